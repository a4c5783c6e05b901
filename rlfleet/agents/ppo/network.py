"""The network a PPO run learns, acts with and evaluates: an actor-critic with a categorical head
(Discrete actions) or a Gaussian head (Box actions), :mod:`rlfleet.models.actor_critic`."""

from __future__ import annotations

from typing import Any

from torch import nn

from rlfleet.agents.common.critic_inputs import check_critic_inputs, with_critic_inputs
from rlfleet.agents.common.heads import policy_head
from rlfleet.envs.spec import EnvSpec
from rlfleet.models import build_actor_critic


def build_network(config: Any, env: EnvSpec) -> nn.Module:
    """``obs -> (policy params [B, P], value [B])`` as the config's ``model`` section says; with
    ``model.critic_inputs = k`` the last k entries are critic-only
    (:mod:`rlfleet.agents.common.critic_inputs`)."""
    m = config.model
    k = m.critic_inputs
    check_critic_inputs(k, env.obs_shape, config.env.normalize_obs)
    base = build_actor_critic(
        (env.obs_shape[0] - k,) if k else env.obs_shape,
        policy_head(env, m),
        torso=m.torso,
        hidden=m.hidden,
        activation=m.activation,
        shared=m.shared,
        normalize_obs=config.env.normalize_obs,
        ortho_init=m.ortho_init,
    )
    return with_critic_inputs(base, env.obs_shape, k)
