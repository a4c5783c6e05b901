"""The classic senders by name: :data:`SCHEMES` and :func:`make_controller`."""

from __future__ import annotations

from collections.abc import Callable

from rlfleet.envs.netsim.cc.base import CongestionController, FixedCwnd
from rlfleet.envs.netsim.cc.bbr import BBR
from rlfleet.envs.netsim.cc.delay_based import Copa, Vegas
from rlfleet.envs.netsim.cc.loss_based import Cubic, NewReno
from rlfleet.errors import ConfigError

#: scheme name -> factory(seed) for the classic senders.
SCHEMES: dict[str, Callable[[int], CongestionController]] = {
    "newreno": lambda seed: NewReno(),
    "cubic": lambda seed: Cubic(),
    "bbr": lambda seed: BBR(seed=seed),
    "copa": lambda seed: Copa(),
    "vegas": lambda seed: Vegas(),
}


def make_controller(scheme: str, seed: int = 0) -> CongestionController:
    """Build a classic controller by name; ``fixed:N`` is a fixed window of N packets."""
    if scheme.startswith("fixed"):
        _, _, n = scheme.partition(":")
        try:
            return FixedCwnd(float(n) if n else 10.0)
        except ValueError:
            raise ConfigError(
                f"bad fixed-cwnd scheme {scheme!r}; write fixed:N (packets)"
            ) from None
    try:
        return SCHEMES[scheme](seed)
    except KeyError:
        valid = ", ".join([*SCHEMES, "fixed:N"])
        raise ConfigError(f"unknown scheme {scheme!r}; valid: {valid}") from None
