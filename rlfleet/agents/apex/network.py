"""The network an Ape-X run learns, acts with and evaluates: a Q-network (optionally dueling)."""

from __future__ import annotations

from typing import Any

from torch import nn

from rlfleet.envs.spec import EnvSpec
from rlfleet.models import build_q_network


def build_network(config: Any, env: EnvSpec) -> nn.Module:
    """``obs -> Q [B, A]`` with the config's torso, hidden sizes and dueling head."""
    m = config.model
    return build_q_network(
        env.obs_shape,
        env.num_actions,
        torso=m.torso,
        hidden=m.hidden,
        dueling=m.dueling,
        normalize_obs=config.env.normalize_obs,
    )
