"""The Ape-X actor's acting step: epsilon-greedy on a CPU copy of the Q-network (one epsilon per
explorer on the paper's ladder), n-step transitions staged locally, initial priorities computed
by the actor, pushed ``actor.push_size`` at a time. The loop around it is
:func:`rlfleet.agents.common.actor.run_actor`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from rlfleet.agents.apex.messages import EXPERIENCE_KIND, wants_one_step
from rlfleet.agents.apex.network import build_network
from rlfleet.agents.common.networks import EpsilonGreedy, as_tensor
from rlfleet.agents.common.prioritized import StagingBuffer
from rlfleet.agents.spec import ActorSlot
from rlfleet.envs.spec import EnvSpec
from rlfleet.envs.vector import StepResult
from rlfleet.math import double_q_target, td_errors
from rlfleet.math.dqfd import transformed_double_q_target
from rlfleet.models.params import load_flat, param_count
from rlfleet.replay import NStepAccumulator
from rlfleet.transport.codec import encode


def apex_epsilons(count: int, base: float = 0.4, alpha: float = 7.0) -> np.ndarray:
    """Per-explorer epsilons ``base ** (1 + alpha * i / (count - 1))`` (Horgan et al. 2018).

    With a single explorer the formula is undefined; it gets ``base``.
    """
    if count == 1:
        return np.array([base], dtype=np.float64)
    i = np.arange(count, dtype=np.float64)
    return base ** (1.0 + alpha * i / (count - 1))


def actor_epsilons(config: Any, actor_index: int, num_actors: int) -> np.ndarray:
    """Epsilons of this actor's K environments (one per actor, or spread over all envs)."""
    k = config.env.envs_per_actor
    a = config.actor
    if a.epsilon_per == "env":
        all_eps = apex_epsilons(num_actors * k, a.epsilon, a.epsilon_alpha)
        return all_eps[actor_index * k : (actor_index + 1) * k]
    return np.full(k, apex_epsilons(num_actors, a.epsilon, a.epsilon_alpha)[actor_index])


@torch.inference_mode()
def initial_priorities(
    net: torch.nn.Module,
    batch: Mapping[str, np.ndarray],
    double: bool = True,
    rescale_eps: float | None = None,
) -> np.ndarray:
    """Absolute n-step double-DQN TD errors from the actor's own network copy (Ape-X).

    The actor has no separate target network; its copy plays both roles. ``rescale_eps``
    (Ape-X DQfD) uses the transformed target ``h(G + discount * h^-1(Q))`` with that eps, so
    the priority matches the TD error the learner will compute.
    """
    obs, next_obs = as_tensor(batch["obs"]), as_tensor(batch["next_obs"])
    q_both = net(torch.cat([obs, next_obs], dim=0))
    q, next_q = q_both[: len(obs)], q_both[len(obs) :]
    reward, discount = as_tensor(batch["reward"]), as_tensor(batch["discount"])
    if rescale_eps is None:
        target = double_q_target(reward, discount, next_q, next_q, double)
    else:
        target = transformed_double_q_target(reward, discount, next_q, next_q, rescale_eps, double)
    return td_errors(q, as_tensor(batch["action"]), target).abs().numpy()


class LocalBuffer(StagingBuffer):
    """Preallocated staging area for transitions before priorities are computed and pushed."""

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype,
        one_step: bool = False,
    ) -> None:
        obs = (tuple(obs_shape), obs_dtype)
        scalar = ((), np.float32)
        fields = {
            "obs": obs,
            "action": ((), np.int64),
            "reward": scalar,
            "discount": scalar,
            "next_obs": obs,
        }
        if one_step:  # DQfD's 1-step target next to the n-step one
            fields.update(reward_1=scalar, discount_1=scalar, next_obs_1=obs)
        super().__init__(capacity, fields)


class ApexActing:
    """Epsilon-greedy acting, n-step staging and prioritized pushes for one Ape-X actor."""

    def __init__(self, config: Any, env: EnvSpec, slot: ActorSlot, seed: int) -> None:
        self.config = config
        self.member = slot.member
        k, n = config.env.envs_per_actor, config.algo.n_step
        self.net = build_network(config, env)
        self.net.eval()
        self.param_count = param_count(self.net)
        self.policy = EpsilonGreedy(self.net, env.num_actions, seed)
        # actor.int8: actions from an int8 copy, rebuilt after each parameter load on the
        # observations in hand (calibration needs real inputs)
        self.int8 = bool(config.actor.int8)
        self._int8_stale = self.int8
        self.epsilons = actor_epsilons(config, slot.index, slot.count)
        one_step = wants_one_step(config)
        self.acc = NStepAccumulator(k, n, config.algo.gamma, env.obs_shape, env.obs_dtype, one_step)
        self.buffer = LocalBuffer(
            config.actor.push_size + k * n, env.obs_shape, env.obs_dtype, one_step
        )
        # Ape-X DQfD learns in h-space: the actor's priorities use the same transformed target
        d = config.dqfd
        self.rescale_eps = 1e-2 if d.enabled and d.is_transformed else None
        self.version = 0
        self.batch_steps = 0
        self.steps_since_push = 0
        self._obs: np.ndarray | None = None
        self._actions: np.ndarray | None = None

    def load_params(self, flat: np.ndarray, version: int) -> None:
        load_flat(self.net, flat)
        self.version = version
        self._int8_stale = self.int8

    def begin(self, obs: np.ndarray) -> None:
        self._obs = obs

    @torch.inference_mode()  # a Q-network without state: no autograd records, ~25% faster
    def act(self, obs: np.ndarray) -> np.ndarray:
        self._obs = obs
        if self._int8_stale:
            from rlfleet.models.int8_policy import int8_q_network

            self.policy.net = int8_q_network(self.net, [as_tensor(obs)])
            self._int8_stale = False
        self._actions = self.policy.act(obs, self.epsilons)
        return self._actions

    def observe(self, step: StepResult) -> list[bytes]:
        self.buffer.extend(
            self.acc.step(
                self._obs,
                self._actions,
                step.reward,
                step.terminated,
                step.truncated,
                step.next_obs,
            )
        )
        self.batch_steps += 1
        self.steps_since_push += len(step.reward)
        if self.buffer.size < self.config.actor.push_size:
            return []
        return [self._encode()]

    def waiting(self) -> bool:
        return False  # asynchronous: acts with whatever parameters it has

    def wants_params(self) -> bool:
        return self.batch_steps % self.config.actor.param_fetch_interval == 0

    def _encode(self) -> bytes:
        batch = self.buffer.view()
        priorities = initial_priorities(
            self.net, batch, self.config.algo.double, self.rescale_eps
        ).astype(np.float32)
        payload = encode(
            EXPERIENCE_KIND,
            {**batch, "priority": priorities},
            {
                "actor": self.member,
                "policy_version": self.version,
                "env_steps": self.steps_since_push,
            },
        )
        self.steps_since_push = 0
        self.buffer.size = 0
        return payload
