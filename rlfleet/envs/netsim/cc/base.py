"""The controller interface every sender implements, and the two that do not react to the
network: :class:`External` (the RL agent sets the window) and :class:`FixedCwnd`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rlfleet.errors import ConfigError

if TYPE_CHECKING:
    from rlfleet.envs.netsim.flow import Flow


class CongestionController:
    """Interface. Subclasses override the hooks they need."""

    name = "base"
    #: ask the engine to maintain ``flow.rtt_standing`` (windowed min RTT over srtt/2)
    track_standing = False

    def on_start(self, f: Flow, now: float) -> None:
        """Called once when the flow starts."""

    def on_ack(self, f: Flow, now: float, acked: int, newest: tuple) -> None:
        """``acked`` packets newly acknowledged; ``newest`` is the newest acked send record."""

    def on_loss(
        self, f: Flow, now: float, n_lost: int, newest_sent: float, persistent: bool
    ) -> None:
        """``n_lost`` packets declared lost; the newest of them was sent at ``newest_sent``."""

    @staticmethod
    def new_event(f: Flow, now: float, newest_sent: float) -> bool:
        """Start a recovery period unless the loss belongs to the current one."""
        if newest_sent <= f.recovery_start:
            return False
        f.recovery_start = now
        return True


class External(CongestionController):
    """No automatic control: the RL agent (or a test) sets ``flow.cwnd``; unpaced, as mvfst-rl."""

    name = "rl"
    track_standing = True


class FixedCwnd(CongestionController):
    """A constant window (mvfst_rl_fixed); ignores loss, including persistent congestion."""

    name = "fixed"

    def __init__(self, cwnd: float = 10.0) -> None:
        if not cwnd > 0:
            raise ConfigError(f"fixed cwnd must be > 0 packets, got {cwnd!r}")
        self.cwnd = float(cwnd)

    def on_start(self, f: Flow, now: float) -> None:
        f.cwnd = self.cwnd
