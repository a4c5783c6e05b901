"""The Ape-X actor's acting step: epsilon-greedy on a CPU copy of the Q-network (one epsilon per
explorer on the paper's ladder), n-step transitions staged locally, initial priorities computed
by the actor, pushed ``actor.push_size`` at a time. The staging and pushing are the Ape-X
family's (:class:`~rlfleet.agents.common.prioritized_acting.PrioritizedActing`); this module
gives it the epsilon-greedy behaviour and double-DQN priorities. The loop around it is
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
from rlfleet.agents.common.prioritized_acting import (
    PrioritizedActing,
    ladder_slice,
    staging_fields,
)
from rlfleet.agents.spec import ActorSlot
from rlfleet.envs.spec import EnvSpec
from rlfleet.math import double_q_target, exploration_ladder, td_errors
from rlfleet.math.dqfd import transformed_double_q_target
from rlfleet.replay import NStepAccumulator


def apex_epsilons(count: int, base: float = 0.4, alpha: float = 7.0) -> np.ndarray:
    """Per-explorer epsilons ``base ** (1 + alpha * i / (count - 1))`` (Horgan et al. 2018);
    a single explorer gets ``base``."""
    return exploration_ladder(count, base, alpha)


def actor_epsilons(config: Any, actor_index: int, num_actors: int) -> np.ndarray:
    """Epsilons of this actor's K environments (one per actor, or spread over all envs)."""
    a = config.actor
    return ladder_slice(
        a.epsilon_per,
        a.epsilon,
        a.epsilon_alpha,
        actor_index,
        num_actors,
        config.env.envs_per_actor,
    )


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


class Int8Behaviour:
    """``actor.int8``: epsilon-greedy on an int8 copy of the Q-network
    (:mod:`rlfleet.models.int8_policy`), quantized again -- min/max calibration on the
    observations in hand -- after every parameter load. The fp32 network keeps computing the
    priorities."""

    def __init__(self, net: torch.nn.Module, policy: EpsilonGreedy, epsilons: np.ndarray) -> None:
        self.net, self.policy, self.epsilons = net, policy, epsilons
        self.stale = True

    def __call__(self, obs: np.ndarray, _step: int) -> np.ndarray:
        if self.stale:
            from rlfleet.models.int8_policy import int8_q_network

            self.policy.net = int8_q_network(self.net, [as_tensor(obs)])
            self.stale = False
        return self.policy.act(obs, self.epsilons)


class Int8PrioritizedActing(PrioritizedActing):
    """Prioritized acting whose behaviour (an :class:`Int8Behaviour`) is re-quantized when new
    parameters arrive."""

    def load_params(self, flat: np.ndarray, version: int) -> None:
        super().load_params(flat, version)
        self.behaviour.stale = True


def make_acting(config: Any, env: EnvSpec, slot: ActorSlot, seed: int) -> PrioritizedActing:
    """Epsilon-greedy acting, n-step staging and prioritized pushes for one Ape-X actor."""
    k, n = config.env.envs_per_actor, config.algo.n_step
    net = build_network(config, env)
    net.eval()
    policy = EpsilonGreedy(net, env.num_actions, seed)
    epsilons = actor_epsilons(config, slot.index, slot.count)
    one_step = wants_one_step(config)
    fields = staging_fields(env.obs_shape, env.obs_dtype)
    if one_step:  # DQfD's 1-step target next to the n-step one
        scalar = ((), np.float32)
        fields.update(reward_1=scalar, discount_1=scalar, next_obs_1=fields["obs"])
    # Ape-X DQfD learns in h-space: the actor's priorities use the same transformed target
    d = config.dqfd
    rescale_eps = 1e-2 if d.enabled and d.is_transformed else None
    if config.actor.int8:
        behaviour: Any = Int8Behaviour(net, policy, epsilons)
        acting_class: type[PrioritizedActing] = Int8PrioritizedActing
    else:
        behaviour, acting_class = (lambda obs, _step: policy.act(obs, epsilons)), PrioritizedActing
    return acting_class(
        config,
        net,
        behaviour=behaviour,
        priorities=lambda batch: initial_priorities(net, batch, config.algo.double, rescale_eps),
        accumulator=NStepAccumulator(
            k, n, config.algo.gamma, env.obs_shape, env.obs_dtype, one_step
        ),
        fields=fields,
        kind=EXPERIENCE_KIND,
        member=slot.member,
    )
