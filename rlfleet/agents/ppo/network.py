"""The network a PPO run learns, acts with and evaluates: an actor-critic with a categorical head
(Discrete actions) or a Gaussian head (Box actions), :mod:`rlfleet.models.actor_critic`."""

from __future__ import annotations

from typing import Any

from rlfleet.agents.common.heads import policy_head
from rlfleet.envs.spec import EnvSpec
from rlfleet.models import ActorCriticNetwork, build_actor_critic


def build_network(config: Any, env: EnvSpec) -> ActorCriticNetwork:
    """``obs -> (policy params [B, P], value [B])`` as the config's ``model`` section says."""
    m = config.model
    return build_actor_critic(
        env.obs_shape,
        policy_head(env, m),
        torso=m.torso,
        hidden=m.hidden,
        activation=m.activation,
        shared=m.shared,
        normalize_obs=config.env.normalize_obs,
        ortho_init=m.ortho_init,
    )
