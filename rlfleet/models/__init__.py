"""rlfleet.models: Q-networks and policy-value networks (MLP, MinAtar CNN, Nature CNN),
optionally with an LSTM core."""

from __future__ import annotations

from rlfleet.models.networks import (
    TORSOS,
    DuelingHead,
    PolicyValueNetwork,
    QNetwork,
    build_policy_value_network,
    build_q_network,
    build_torso,
    resolve_torso,
)
from rlfleet.models.recurrent import CORES, CoreStateHolder, LSTMPolicyValueNetwork, is_recurrent

__all__ = [
    "CORES",
    "TORSOS",
    "CoreStateHolder",
    "LSTMPolicyValueNetwork",
    "is_recurrent",
    "DuelingHead",
    "PolicyValueNetwork",
    "QNetwork",
    "build_policy_value_network",
    "build_q_network",
    "build_torso",
    "resolve_torso",
]
