"""The Ape-X DPG actor's acting step: ``mu(s)`` plus Gaussian noise of this explorer's scale
(one scale per actor, or per environment, on Ape-X's epsilon ladder), clipped into the Box;
n-step transitions staged locally; initial priorities ``|y - Q_1(s, a)|`` computed on the
actor's own copy of the actor and critics; pushed ``actor.push_size`` at a time. The staging and
pushing are the Ape-X family's (:class:`~rlfleet.agents.common.prioritized_acting.PrioritizedActing`);
this module gives it the noisy behaviour and the twin-critic priorities. The loop around it is
:func:`rlfleet.agents.common.actor.run_actor`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from rlfleet.agents.common.networks import as_tensor
from rlfleet.agents.common.prioritized_acting import (
    PrioritizedActing,
    ladder_slice,
    staging_fields,
)
from rlfleet.agents.dpg.messages import EXPERIENCE_KIND
from rlfleet.agents.dpg.network import DPGNetwork, build_network
from rlfleet.agents.spec import ActorSlot
from rlfleet.envs.spec import EnvSpec
from rlfleet.math import td3_target
from rlfleet.replay import NStepAccumulator


def actor_noise_scales(config: Any, actor_index: int, num_actors: int) -> np.ndarray:
    """Noise std (fraction of the half-range) of this actor's K environments."""
    a = config.actor
    return ladder_slice(
        a.noise_per, a.noise, a.noise_alpha, actor_index, num_actors, config.env.envs_per_actor
    )


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


class NoisyBehaviour:
    """``mu(s)`` plus Gaussian noise of each environment's scale (a fraction of the Box's
    half-range), clipped into the Box; uniformly random actions for the first
    ``actor.random_steps`` batch steps."""

    def __init__(self, config: Any, env: EnvSpec, net: DPGNetwork, slot: ActorSlot, seed: int):
        self.net = net
        low, high = env.action_bounds
        self.low, self.high = np.asarray(low, np.float32), np.asarray(high, np.float32)
        self.half = (self.high - self.low) / 2
        self.sigma = actor_noise_scales(config, slot.index, slot.count).astype(np.float32)
        self.rng = np.random.default_rng(seed)
        self.random_steps = config.actor.random_steps

    def __call__(self, obs: np.ndarray, batch_step: int) -> np.ndarray:
        k, d = len(obs), len(self.low)
        if batch_step < self.random_steps:
            actions = self.rng.uniform(self.low, self.high, size=(k, d)).astype(np.float32)
        else:
            mu = self.net(as_tensor(obs)).numpy()
            noise = self.rng.standard_normal((k, d), dtype=np.float32)
            actions = np.clip(mu + noise * (self.sigma[:, None] * self.half), self.low, self.high)
        return actions.astype(np.float32, copy=False)


def make_acting(config: Any, env: EnvSpec, slot: ActorSlot, seed: int) -> PrioritizedActing:
    """Noisy deterministic acting, n-step staging and prioritized pushes for one actor."""
    k, n, d = config.env.envs_per_actor, config.algo.n_step, env.action_dim
    net = build_network(config, env)
    net.eval()
    return PrioritizedActing(
        config,
        net,
        behaviour=NoisyBehaviour(config, env, net, slot, seed),
        priorities=lambda batch: initial_priorities(net, batch),
        accumulator=NStepAccumulator(
            k,
            n,
            config.algo.gamma,
            env.obs_shape,
            env.obs_dtype,
            action_shape=(d,),
            action_dtype=np.float32,
        ),
        fields=staging_fields(env.obs_shape, env.obs_dtype, (d,), np.float32),
        kind=EXPERIENCE_KIND,
        member=slot.member,
    )
