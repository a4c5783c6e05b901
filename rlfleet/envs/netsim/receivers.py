"""Receiver / transport profiles of the RL flow: which ACK policy and loss-detection constants
the simulated connection uses.

* ``pantheon`` (default): what Pantheon's kernel-TCP receivers do and what netsim always did:
  ACK every 2 packets or after 25 ms, RFC 9002 time threshold 9/8 RTT, initial RTT 333 ms.
* ``mvfst``: mvfst-rl's own QUIC connection (mvfst defaults): ACK every 10 packets after the
  handshake, delayed-ACK timer srtt / 4 capped at 25 ms (the receiver's srtt; netsim's receiver
  borrows the sender's estimate), time threshold 5/4 RTT, initial RTT 50 ms.

The profile sets the defaults; an explicit ``ack_every`` still overrides the profile's.
"""

from __future__ import annotations

from typing import Any

from rlfleet.errors import ConfigError

#: profile -> Flow keyword arguments
RECEIVERS: dict[str, dict[str, float]] = {
    "pantheon": {
        "ack_every": 2,
        "ack_timer_ms": 25.0,
        "ack_timer_srtt": 0.0,
        "time_threshold": 9 / 8,
        "initial_rtt_ms": 333.0,
    },
    "mvfst": {
        "ack_every": 10,
        "ack_timer_ms": 25.0,
        "ack_timer_srtt": 0.25,
        "time_threshold": 5 / 4,
        "initial_rtt_ms": 50.0,
    },
}


def receiver_profile(name: str, ack_every: int | None = None) -> dict[str, Any]:
    """The Flow keyword arguments of profile ``name`` (``ack_every`` overrides the profile's)."""
    try:
        prof = dict(RECEIVERS[name])
    except KeyError:
        raise ConfigError(
            f"unknown receiver profile {name!r}; valid: {', '.join(RECEIVERS)}"
        ) from None
    if ack_every is not None:
        if int(ack_every) != ack_every or ack_every < 1:
            raise ConfigError(f"ack_every must be an integer >= 1, got {ack_every!r}")
        prof["ack_every"] = int(ack_every)
    prof["ack_every"] = int(prof["ack_every"])
    return prof
