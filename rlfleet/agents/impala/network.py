"""The network an IMPALA run learns, acts with and evaluates: policy logits and a value, with an
optional LSTM core."""

from __future__ import annotations

from typing import Any

from torch import nn

from rlfleet.agents.common.heads import policy_head
from rlfleet.envs.spec import EnvSpec
from rlfleet.models import build_policy_value_network


def build_network(config: Any, env: EnvSpec) -> nn.Module:
    """``obs -> (logits [B, A], value [B])`` with the config's torso, hidden sizes and core;
    for Box actions the policy output is a Gaussian head's ``[B, 2D]`` (mean, log-std)."""
    m = config.model
    return build_policy_value_network(
        env.obs_shape,
        env.num_actions if env.discrete else 1,
        torso=m.torso,
        hidden=m.hidden,
        core=m.core,
        lstm_size=m.lstm_size,
        normalize_obs=config.env.normalize_obs,
        head=None if env.discrete else policy_head(env, m),
    )
