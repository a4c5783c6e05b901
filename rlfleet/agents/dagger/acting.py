"""The DAgger actor's acting step: the mixture ``beta_i * expert + (1 - beta_i) * learner_i``
chooses where to go, and the expert labels every visited state. The loop around it is
:func:`rlfleet.agents.common.actor.run_actor`.

Policy version v is the learner of iteration v (the learner publishes once per iteration), so
an actor acting with version v mixes with ``beta_v = beta_decay ** (v - 1)``: version 1, the
untrained classifier, is never used (``beta_1 = 1``). The mixture is drawn per environment and
step; the learner's choice is its classifier's argmax. An actor labels at most one iteration's
quota (``dagger.labels_per_iteration``) with each policy, then waits for the next one: the
learner takes only that many of each policy's states, so more would be discarded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rlfleet.agents.common.networks import as_tensor
from rlfleet.agents.dagger.expert import load_expert
from rlfleet.agents.dagger.messages import encode_labels
from rlfleet.agents.dagger.network import build_network
from rlfleet.agents.spec import ActorSlot
from rlfleet.envs.spec import EnvSpec
from rlfleet.envs.vector import StepResult
from rlfleet.models.params import load_flat, param_count


class DaggerActing:
    """Mixture acting and expert labelling for one DAgger actor."""

    def __init__(self, config: Any, env: EnvSpec, slot: ActorSlot, seed: int) -> None:
        self.config = config
        self.member = slot.member
        self.net = build_network(config, env)
        self.net.eval()
        self.param_count = param_count(self.net)
        self.expert = load_expert(config.dagger.expert, env)
        self.rng = np.random.default_rng(seed)
        k, push = config.env.envs_per_actor, config.actor.push_size
        # preallocated staging: a push happens as soon as push_size labels are in
        self.obs = np.empty((push + k, *env.obs_shape), env.obs_dtype)
        self.labels = np.empty(push + k, np.int64)
        self.size = 0
        self.version = 0
        self.beta = 1.0
        self.batch_steps = 0
        self.steps_since_push = 0
        self.labelled = 0  # with the current policy

    def load_params(self, flat: np.ndarray, version: int) -> None:
        load_flat(self.net, flat)
        self.version = version
        self.beta = self.config.dagger.beta(version)
        self.labelled = 0

    def begin(self, obs: np.ndarray) -> None:
        return None

    @torch.inference_mode()
    def act(self, obs: np.ndarray) -> np.ndarray:
        expert = self.expert(obs)  # every visited state gets the expert's label
        n = len(obs)
        self.obs[self.size : self.size + n] = obs
        self.labels[self.size : self.size + n] = expert
        self.size += n
        self.labelled += n
        if self.beta >= 1.0:
            return expert
        learner = self.net(as_tensor(obs)).argmax(dim=1).numpy()
        return np.where(self.rng.random(n) < self.beta, expert, learner).astype(np.int64)

    def observe(self, step: StepResult) -> list[bytes]:
        self.batch_steps += 1
        self.steps_since_push += len(step.reward)
        quota_done = self.labelled >= self.config.dagger.labels_per_iteration
        if self.size == 0 or (self.size < self.config.actor.push_size and not quota_done):
            return []  # a policy's last labels leave at once: the learner waits for them
        payload = encode_labels(
            self.obs[: self.size],
            self.labels[: self.size],
            self.member,
            self.version,
            self.steps_since_push,
        )
        self.size = self.steps_since_push = 0
        return [payload]

    def waiting(self) -> bool:
        """This policy's quota is labelled (and sent): wait for the next iteration's policy."""
        return self.labelled >= self.config.dagger.labels_per_iteration and self.size == 0

    def wants_params(self) -> bool:
        return self.batch_steps % self.config.actor.param_fetch_interval == 0
