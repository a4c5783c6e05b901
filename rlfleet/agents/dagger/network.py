"""The learner's classifier: observation -> action scores (its argmax is the greedy action)."""

from __future__ import annotations

from typing import Any

from torch import nn

from rlfleet.envs.spec import EnvSpec
from rlfleet.models import build_q_network


def build_network(config: Any, env: EnvSpec) -> nn.Module:
    """An MLP (or CNN torso) with one output per action: the torso and head of a Q-network,
    trained here as a classifier with cross-entropy."""
    m = config.model
    return build_q_network(
        env.obs_shape,
        env.num_actions,
        torso=m.torso,
        hidden=m.hidden,
        dueling=False,
        normalize_obs=config.env.normalize_obs,
    )
