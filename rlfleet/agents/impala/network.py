"""The network an IMPALA run learns, acts with and evaluates: policy logits and a value, with an
optional LSTM core."""

from __future__ import annotations

from typing import Any

from torch import nn

from rlfleet.agents.common.critic_inputs import check_critic_inputs, with_critic_inputs
from rlfleet.agents.common.heads import policy_head
from rlfleet.envs.spec import EnvSpec
from rlfleet.models import build_policy_value_network


def build_network(config: Any, env: EnvSpec) -> nn.Module:
    """``obs -> (logits [B, A], value [B])`` with the config's torso, hidden sizes and core;
    for Box actions the policy output is a Gaussian head's ``[B, 2D]`` (mean, log-std). With
    ``model.critic_inputs = k`` the last k entries are critic-only
    (:mod:`rlfleet.agents.common.critic_inputs`)."""
    m = config.model
    k = m.critic_inputs
    check_critic_inputs(k, env.obs_shape, config.env.normalize_obs)
    base = build_policy_value_network(
        (env.obs_shape[0] - k,) if k else env.obs_shape,
        env.num_actions if env.discrete else 1,
        torso=m.torso,
        hidden=m.hidden,
        core=m.core,
        lstm_size=m.lstm_size,
        normalize_obs=config.env.normalize_obs,
        head=None if env.discrete else policy_head(env, m),
    )
    # model.critic_inputs: the last k observation entries reach the value head only
    return with_critic_inputs(base, env.obs_shape, k)
