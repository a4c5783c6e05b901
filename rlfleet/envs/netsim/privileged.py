"""Privileged (ground-truth) path features for a learner's critic.

With ``privileged=True`` netsim appends :data:`PRIVILEGED_FIELDS` to every observation: what the
simulator knows about the path and a deployed sender cannot observe. Agents that support
critic-only inputs (IMPALA, PPO: ``model.critic_inputs``) feed them to the value head only; the
policy never sees them, so evaluation and deployment run without them.
"""

from __future__ import annotations

import math

import numpy as np

from rlfleet.envs.netsim.scenarios.spec import Scenario

#: the appended features, in order
PRIVILEGED_FIELDS = (
    "capacity_mbps / 100",
    "log10(capacity_mbps)",
    "base_rtt_ms / 100",
    "uplink queue limit, packets / 1000 (unbounded: 10)",
    "uplink loss rate, %",
)
N_PRIVILEGED = len(PRIVILEGED_FIELDS)


def privileged_features(sc: Scenario) -> np.ndarray:
    """The :data:`PRIVILEGED_FIELDS` of scenario ``sc`` (float32)."""
    cap = sc.capacity_mbps
    if sc.up_queue_packets is not None:
        q = float(sc.up_queue_packets)
    elif sc.up_queue_bytes is not None:
        q = sc.up_queue_bytes / 1504.0
    else:
        q = 10_000.0
    return np.array(
        [
            cap / 100.0,
            math.log10(max(cap, 1e-3)),
            sc.base_rtt_ms / 100.0,
            q / 1000.0,
            100.0 * sc.loss_up,
        ],
        dtype=np.float32,
    )
