"""rlfleet.models: Q-networks and policy-value networks (MLP, MinAtar CNN, Nature CNN)."""

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

__all__ = [
    "TORSOS",
    "DuelingHead",
    "PolicyValueNetwork",
    "QNetwork",
    "build_policy_value_network",
    "build_q_network",
    "build_torso",
    "resolve_torso",
]
