"""The Ape-X DPG actor's acting step: ``mu(s)`` plus Gaussian noise of this explorer's scale
(one scale per actor, or per environment, on Ape-X's epsilon ladder), clipped into the Box;
n-step transitions staged locally; initial priorities ``|y - Q_1(s, a)|`` computed on the
actor's own copy of the actor and critics; pushed ``actor.push_size`` at a time. The loop
around it is :func:`rlfleet.agents.common.actor.run_actor`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from rlfleet.agents.common.networks import as_tensor
from rlfleet.agents.common.prioritized import StagingBuffer
from rlfleet.agents.dpg.messages import EXPERIENCE_KIND
from rlfleet.agents.dpg.network import DPGNetwork, build_network
from rlfleet.agents.spec import ActorSlot
from rlfleet.envs.spec import EnvSpec
from rlfleet.envs.vector import StepResult
from rlfleet.math import exploration_ladder, td3_target
from rlfleet.models.params import load_flat, param_count
from rlfleet.replay import NStepAccumulator
from rlfleet.transport.codec import encode


def actor_noise_scales(config: Any, actor_index: int, num_actors: int) -> np.ndarray:
    """Noise std (fraction of the half-range) of this actor's K environments."""
    k, a = config.env.envs_per_actor, config.actor
    if a.noise_per == "env":
        every = exploration_ladder(num_actors * k, a.noise, a.noise_alpha)
        return every[actor_index * k : (actor_index + 1) * k]
    return np.full(k, exploration_ladder(num_actors, a.noise, a.noise_alpha)[actor_index])


@torch.inference_mode()
def initial_priorities(net: DPGNetwork, batch: Mapping[str, np.ndarray]) -> np.ndarray:
    """``|r + discount * min_c Q_c(s', mu(s')) - Q_1(s, a)|`` from one network copy (the actor
    has no target networks; its copy plays both roles, as in Ape-X)."""
    obs, next_obs = as_tensor(batch["obs"]), as_tensor(batch["next_obs"])
    x = net.features(torch.cat([obs, next_obs], dim=0))
    x_now, x_next = x[: len(obs)], x[len(obs) :]
    target = td3_target(
        as_tensor(batch["reward"]),
        as_tensor(batch["discount"]),
        net.q_features(x_next, net.act(x_next)),
    )
    q = net.q_features(x_now, as_tensor(batch["action"]), count=1)[0]
    return (target - q).abs().numpy()


class DPGActing:
    """Noisy deterministic acting, n-step staging and prioritized pushes for one actor."""

    def __init__(self, config: Any, env: EnvSpec, slot: ActorSlot, seed: int) -> None:
        self.config = config
        self.member = slot.member
        k, n = config.env.envs_per_actor, config.algo.n_step
        d = env.action_dim
        self.net = build_network(config, env)
        self.net.eval()
        self.param_count = param_count(self.net)
        low, high = env.action_bounds
        self.low, self.high = np.asarray(low, np.float32), np.asarray(high, np.float32)
        self.half = (self.high - self.low) / 2
        self.sigma = actor_noise_scales(config, slot.index, slot.count).astype(np.float32)
        self.rng = np.random.default_rng(seed)
        self.acc = NStepAccumulator(
            k,
            n,
            config.algo.gamma,
            env.obs_shape,
            env.obs_dtype,
            action_shape=(d,),
            action_dtype=np.float32,
        )
        obs = (tuple(env.obs_shape), env.obs_dtype)
        scalar = ((), np.float32)
        self.buffer = StagingBuffer(
            config.actor.push_size + k * n,
            {
                "obs": obs,
                "action": ((d,), np.float32),
                "reward": scalar,
                "discount": scalar,
                "next_obs": obs,
            },
        )
        self.version = 0
        self.batch_steps = 0
        self.steps_since_push = 0
        self._obs: np.ndarray | None = None
        self._actions: np.ndarray | None = None

    def load_params(self, flat: np.ndarray, version: int) -> None:
        load_flat(self.net, flat)
        self.version = version

    def begin(self, obs: np.ndarray) -> None:
        self._obs = obs

    @torch.inference_mode()
    def act(self, obs: np.ndarray) -> np.ndarray:
        self._obs = obs
        k, d = len(obs), len(self.low)
        if self.batch_steps < self.config.actor.random_steps:
            actions = self.rng.uniform(self.low, self.high, size=(k, d)).astype(np.float32)
        else:
            mu = self.net(as_tensor(obs)).numpy()
            noise = self.rng.standard_normal((k, d), dtype=np.float32)
            actions = np.clip(mu + noise * (self.sigma[:, None] * self.half), self.low, self.high)
        self._actions = actions.astype(np.float32, copy=False)
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
        priorities = initial_priorities(self.net, batch).astype(np.float32)
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
