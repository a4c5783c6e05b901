"""The IMPALA actor's acting step: a softmax policy on a CPU copy of the policy-value network, and
unrolls of T steps sent as one message each, with the behaviour logits and the ``policy_version``
that produced them (the learner corrects the lag with V-trace). The loop around it is
:func:`rlfleet.agents.common.actor.run_actor`.

Parameters are checked after every ``actor.param_fetch_interval``-th unroll, so one unroll is acted
by one version. With an LSTM core (``model.core = "lstm"``) the acting step keeps each
environment's core state across steps and unrolls (new parameters do not reset it), zeroes it
after a step that ended the episode, and sends the state before each unroll's first observation
with the unroll.

With Box actions the policy is a Gaussian head (:mod:`rlfleet.agents.common.heads`): unrolls
carry the raw samples and their behaviour log-probabilities instead of logits, and the
environments receive the samples squashed (or clipped) into the bounds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from rlfleet.agents.common.heads import HeadSampler
from rlfleet.agents.common.networks import logits_of
from rlfleet.agents.impala.messages import encode_unroll
from rlfleet.agents.impala.network import build_network
from rlfleet.agents.impala.unrolls import UnrollBuilder
from rlfleet.agents.spec import ActorSlot
from rlfleet.envs.spec import EnvSpec
from rlfleet.envs.vector import StepResult
from rlfleet.errors import ConfigError
from rlfleet.models import CoreStateHolder, is_recurrent
from rlfleet.models.params import load_flat, param_count


class SoftmaxPolicy:
    """Batched sampling from a policy network's softmax, seeded; greedy (argmax) for evaluation.

    Args:
        net: maps observations ``[K, *obs]`` to logits ``[K, A]`` or ``(logits, value)``.
        seed: seed of the sampling generator (numpy), so an actor's actions are reproducible.
    """

    def __init__(self, net: nn.Module | Callable, seed: int) -> None:
        self.net = net
        self.rng = np.random.default_rng(seed)

    def sample(self, logits: np.ndarray) -> np.ndarray:
        """One action per row of ``logits`` ``[K, A]``, drawn from ``softmax(logits)``."""
        logits = np.asarray(logits, dtype=np.float64)
        if logits.ndim != 2 or logits.shape[1] == 0:
            raise ConfigError(f"logits must have shape [K, A] with A >= 1, got {logits.shape}")
        # Inverse-CDF sampling in float64: one uniform per row, no per-row Python loop.
        z = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(z)
        cdf = np.cumsum(probs, axis=1)
        u = self.rng.random(len(logits)) * cdf[:, -1]
        actions = (cdf <= u[:, None]).sum(axis=1)
        # u < cdf[-1] always, but guard the float edge so an index A can never escape.
        return np.minimum(actions, logits.shape[1] - 1).astype(np.int64)

    @torch.no_grad()  # not inference_mode: the LSTM core state is reset in place between calls
    def act(self, obs: np.ndarray, greedy: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Actions ``[K]`` int64 and the behaviour logits ``[K, A]`` float32 for ``obs``.

        ``greedy=True`` takes the argmax (evaluation); the logits are returned either way.
        """
        logits = logits_of(self.net(torch.from_numpy(np.ascontiguousarray(obs))))
        logits_np = logits.float().numpy()
        if greedy:
            return logits_np.argmax(axis=1).astype(np.int64), logits_np
        return self.sample(logits_np), logits_np


class ImpalaActing:
    """Softmax acting and unroll building for one IMPALA actor. All actors sample from the same
    policy, so the slot's index does not change how it acts."""

    def __init__(self, config: Any, env: EnvSpec, slot: ActorSlot, seed: int) -> None:
        self.member = slot.member
        self.fetch_every = config.actor.param_fetch_interval
        self.net = build_network(config, env)
        self.net.eval()
        self.param_count = param_count(self.net)
        self.core = CoreStateHolder(self.net) if is_recurrent(self.net) else None
        self.policy = SoftmaxPolicy(self.core if self.core is not None else self.net, seed)
        # Box actions: a Gaussian head (feed-forward networks; the spec refuses an LSTM core)
        self.sampler = None if env.discrete else HeadSampler(self.net, seed)
        self.k = config.env.envs_per_actor
        self.builder = UnrollBuilder(
            self.k,
            config.algo.unroll_length,
            env.obs_shape,
            env.obs_dtype,
            env.num_actions if env.discrete else 0,
            config.algo.gamma,
            core_size=self.net.lstm_size if self.core is not None else 0,
            action_dim=0 if env.discrete else env.action_dim,
        )
        self.version = 0
        self.unrolls = 0
        self._fetch_due = False
        self._actions: np.ndarray | None = None
        self._logits: np.ndarray | None = None

    def load_params(self, flat: np.ndarray, version: int) -> None:
        load_flat(self.net, flat)
        self.version = version

    def begin(self, obs: np.ndarray) -> None:
        self.builder.start(obs, self.core.start(self.k) if self.core is not None else None)

    def act(self, obs: np.ndarray) -> np.ndarray:
        # the builder's current observations are ``obs``: what the policy acts on at step t
        if self.sampler is not None:
            sampled = self.sampler.sample(self.builder.current_obs)
            self._actions, self._logits = sampled.raw, sampled.log_prob
            return sampled.env
        self._actions, self._logits = self.policy.act(self.builder.current_obs)
        return self._actions

    def observe(self, step: StepResult) -> list[bytes]:
        next_core_state = None
        if self.core is not None:
            self.core.reset(step.terminated | step.truncated)  # auto-reset starts new episodes
            # Copied only when it starts the next unroll, i.e. once per T steps.
            next_core_state = self.core.state
        unroll = self.builder.add(
            self._actions,
            self._logits,
            step.reward,
            step.terminated,
            step.truncated,
            next_obs=step.obs,
            final_obs=step.next_obs,
            policy_version=self.version,
            next_core_state=next_core_state,
        )
        if unroll is None:
            return []
        self.unrolls += 1
        self._fetch_due = self.unrolls % self.fetch_every == 0
        return [encode_unroll(unroll, self.member)]

    def waiting(self) -> bool:
        return False  # asynchronous: acts with whatever parameters it has

    def wants_params(self) -> bool:
        due, self._fetch_due = self._fetch_due, False
        return due
