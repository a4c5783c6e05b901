"""Classic congestion controllers running inside the simulator, on every ACK.

Windows are in packets, times in ms (Cubic's formula converts to seconds as RFC 9438 states it).
Each controller mutates ``flow.cwnd`` (and ``flow.pacing_rate`` in packets/ms when paced); the
engine clamps cwnd to the flow's [min, max]. Recovery periods follow RFC 9002: one window
reduction per loss of a packet sent after the last reduction.

One module per family: :mod:`.base` (the interface, ``External``, ``FixedCwnd``),
:mod:`.loss_based` (NewReno, CUBIC), :mod:`.delay_based` (Vegas, Copa), :mod:`.bbr` (BBR v1);
:mod:`.registry` builds them by name. Every name is importable from this package.
"""

from __future__ import annotations

from rlfleet.envs.netsim.cc.base import CongestionController, External, FixedCwnd
from rlfleet.envs.netsim.cc.bbr import BBR
from rlfleet.envs.netsim.cc.delay_based import Copa, Vegas
from rlfleet.envs.netsim.cc.loss_based import Cubic, NewReno
from rlfleet.envs.netsim.cc.registry import SCHEMES, make_controller

__all__ = [
    "BBR",
    "SCHEMES",
    "CongestionController",
    "Copa",
    "Cubic",
    "External",
    "FixedCwnd",
    "NewReno",
    "Vegas",
    "make_controller",
]
