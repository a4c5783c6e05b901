"""Classic congestion controllers running inside the simulator, on every ACK.

Windows are in packets, times in ms (Cubic's formula converts to seconds as RFC 9438 states it).
Each controller mutates ``flow.cwnd`` (and ``flow.pacing_rate`` in packets/ms when paced); the
engine clamps cwnd to the flow's [min, max]. Recovery periods follow RFC 9002: one window
reduction per loss of a packet sent after the last reduction.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from rlfleet.errors import ConfigError

if TYPE_CHECKING:
    from rlfleet.envs.netsim.engine import Flow


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
    def _new_event(f: Flow, now: float, newest_sent: float) -> bool:
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


class NewReno(CongestionController):
    """RFC 9002 section 7 NewReno: slow start, +1/RTT avoidance, beta = 0.5 once per recovery."""

    name = "newreno"

    def __init__(self, beta: float = 0.5) -> None:
        self.beta = beta

    def on_ack(self, f: Flow, now: float, acked: int, newest: tuple) -> None:
        if newest[1] <= f.recovery_start:
            return  # acks of packets sent before the reduction do not grow the window
        if f.cwnd < f.ssthresh:
            f.cwnd += acked
        else:
            f.cwnd += acked / f.cwnd

    def on_loss(
        self, f: Flow, now: float, n_lost: int, newest_sent: float, persistent: bool
    ) -> None:
        if self._new_event(f, now, newest_sent):
            f.ssthresh = max(f.cwnd * self.beta, f.min_cwnd)
            f.cwnd = f.ssthresh
        if persistent:
            f.cwnd = f.min_cwnd


class Cubic(CongestionController):
    """RFC 9438 CUBIC (C = 0.4, beta = 0.7) with fast convergence and the Reno-friendly region."""

    name = "cubic"

    def __init__(self, c: float = 0.4, beta: float = 0.7, fast_convergence: bool = True) -> None:
        self.c = c
        self.beta = beta
        self.fast_convergence = fast_convergence
        self.alpha = 3.0 * (1.0 - beta) / (1.0 + beta)
        self.w_max = 0.0
        self.k = 0.0
        self.t_epoch: float | None = None
        self.w_est = 0.0

    def w_cubic(self, t_s: float) -> float:
        """The cubic curve W(t) = C (t - K)^3 + W_max, t in seconds since the epoch start."""
        return self.c * (t_s - self.k) ** 3 + self.w_max

    def on_ack(self, f: Flow, now: float, acked: int, newest: tuple) -> None:
        if newest[1] <= f.recovery_start:
            return
        cwnd = f.cwnd
        if cwnd < f.ssthresh:
            f.cwnd = cwnd + acked
            return
        if self.t_epoch is None:
            self.t_epoch = now
            self.w_est = cwnd
            if (
                self.w_max < cwnd
            ):  # no loss yet (left slow start via ssthresh): start on the plateau
                self.w_max = cwnd
                self.k = 0.0
            else:
                self.k = ((self.w_max - cwnd) / self.c) ** (1.0 / 3.0)
        t = (now - self.t_epoch) / 1000.0
        target = self.w_cubic(t + f.srtt / 1000.0)
        if target < cwnd:
            target = cwnd
        elif target > 1.5 * cwnd:
            target = 1.5 * cwnd
        cwnd += acked * (target - cwnd) / cwnd
        self.w_est += self.alpha * acked / f.cwnd
        if self.w_cubic(t) < self.w_est and self.w_est > cwnd:
            cwnd = self.w_est
        f.cwnd = cwnd

    def on_loss(
        self, f: Flow, now: float, n_lost: int, newest_sent: float, persistent: bool
    ) -> None:
        if self._new_event(f, now, newest_sent):
            cwnd = f.cwnd
            if self.fast_convergence and cwnd < self.w_max:
                self.w_max = cwnd * (1.0 + self.beta) / 2.0
            else:
                self.w_max = cwnd
            f.ssthresh = max(cwnd * self.beta, f.min_cwnd)
            f.cwnd = f.ssthresh
            self.t_epoch = None
        if persistent:
            f.cwnd = f.min_cwnd
            self.t_epoch = None


class Vegas(CongestionController):
    """TCP Vegas (Linux constants alpha = 2, beta = 4, gamma = 1), adjusted once per RTT."""

    name = "vegas"

    def __init__(self, alpha: float = 2.0, beta: float = 4.0, gamma: float = 1.0) -> None:
        self.alpha, self.beta, self.gamma = alpha, beta, gamma
        self.round_end_pn = -1
        self.round_min_rtt = math.inf

    def on_ack(self, f: Flow, now: float, acked: int, newest: tuple) -> None:
        if f.latest_rtt < self.round_min_rtt:
            self.round_min_rtt = f.latest_rtt
        if newest[0] >= self.round_end_pn:  # one RTT has passed: decide once
            self.round_end_pn = f.next_pn
            rtt = self.round_min_rtt
            self.round_min_rtt = math.inf
            if math.isfinite(rtt) and rtt > 0:
                diff = f.cwnd * (1.0 - f.min_rtt / rtt)
                if f.cwnd < f.ssthresh:
                    if diff > self.gamma:  # leave slow start at the window the path carries
                        f.cwnd = max(min(f.cwnd, f.cwnd * f.min_rtt / rtt + 1.0), f.min_cwnd)
                        f.ssthresh = f.cwnd
                    return
                if diff < self.alpha:
                    f.cwnd += 1.0
                elif diff > self.beta:
                    f.cwnd -= 1.0
                return
        if f.cwnd < f.ssthresh and newest[1] > f.recovery_start:
            f.cwnd += acked

    def on_loss(
        self, f: Flow, now: float, n_lost: int, newest_sent: float, persistent: bool
    ) -> None:
        if self._new_event(f, now, newest_sent):
            f.ssthresh = max(f.cwnd * 0.5, f.min_cwnd)
            f.cwnd = f.ssthresh
        if persistent:
            f.cwnd = f.min_cwnd


class Copa(CongestionController):
    """Copa (NSDI 2018 default mode) with mvfst's structure; ``delta`` = 0.1 as Pantheon runs it."""

    name = "copa"
    track_standing = True

    def __init__(self, delta: float = 0.1) -> None:
        if not delta > 0:
            raise ConfigError(f"copa delta must be > 0, got {delta!r}")
        self.delta = delta
        self.velocity = 1.0
        self.direction = 0
        self.same_dir = 0
        self.last_cwnd = 0.0
        self.last_check = -math.inf
        self.slow_start = True
        self.ss_last = -math.inf

    def on_start(self, f: Flow, now: float) -> None:
        self.last_cwnd = f.cwnd

    def on_ack(self, f: Flow, now: float, acked: int, newest: tuple) -> None:
        st = f.rtt_standing
        if st <= 0.0:
            return
        dq = st - f.min_rtt
        cwnd = f.cwnd
        increase = dq <= 0.0 or cwnd / st <= 1.0 / (self.delta * dq)
        if now - self.last_check >= f.srtt:  # velocity update once per RTT
            d = 1 if cwnd > self.last_cwnd else -1
            if d == self.direction:
                self.same_dir += 1
                if self.same_dir >= 3:
                    self.velocity *= 2.0
            else:
                self.direction = d
                self.same_dir = 0
                self.velocity = 1.0
            self.last_cwnd = cwnd
            self.last_check = now
        if self.slow_start:
            if increase:
                cwnd += acked  # doubles per RTT
            else:
                self.slow_start = False
        if not self.slow_start:
            step = self.velocity * acked / (self.delta * cwnd)
            cwnd = cwnd + step if increase else cwnd - step
            if cwnd < f.min_cwnd:
                cwnd = f.min_cwnd
                self.velocity = 1.0
        f.cwnd = cwnd
        f.pacing_rate = 2.0 * cwnd / st

    def on_loss(
        self, f: Flow, now: float, n_lost: int, newest_sent: float, persistent: bool
    ) -> None:
        if persistent:
            f.cwnd = f.min_cwnd
            self.velocity = 1.0


_STARTUP, _DRAIN, _PROBE_BW, _PROBE_RTT = range(4)
_HIGH_GAIN = 2.0 / math.log(2.0)
_CYCLE = (1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)


class BBR(CongestionController):
    """BBR v1: windowed-max bandwidth (10 rounds), min RTT (10 s), four states, pacing.

    Loss is ignored except for persistent congestion (v1 behaviour, hence high loss on shallow
    buffers and policers).
    """

    name = "bbr"

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self.mode = _STARTUP
        self.bw_filter: deque[tuple[int, float]] = deque()  # (round, bw) decreasing bw
        self.btlbw = 0.0
        self.rtprop = math.inf
        self.rtprop_stamp = 0.0
        self.round_count = 0
        self.next_round_delivered = 0
        self.full_bw = 0.0
        self.full_bw_count = 0
        self.filled_pipe = False
        self.cycle_index = 0
        self.cycle_stamp = 0.0
        self.pacing_gain = _HIGH_GAIN
        self.cwnd_gain = _HIGH_GAIN
        self.probe_rtt_done = -1.0
        self.probe_rtt_round_done = False
        self.prior_cwnd = 0.0

    def bdp(self) -> float:
        return self.btlbw * self.rtprop if math.isfinite(self.rtprop) else 0.0

    def on_start(self, f: Flow, now: float) -> None:
        f.pacing_rate = _HIGH_GAIN * f.cwnd / 1.0  # Linux: init_cwnd over a nominal 1 ms RTT
        self.rtprop_stamp = now

    def on_ack(self, f: Flow, now: float, acked: int, newest: tuple) -> None:
        round_start = False
        if newest[2] >= self.next_round_delivered:
            self.next_round_delivered = f.delivered
            self.round_count += 1
            round_start = True
        if f.rs_interval > 0.0:
            bw = f.rs_delivered / f.rs_interval
            flt = self.bw_filter
            while flt and flt[-1][1] <= bw:
                flt.pop()
            flt.append((self.round_count, bw))
            while flt[0][0] <= self.round_count - 10:
                flt.popleft()
            self.btlbw = flt[0][1]
        if round_start and not self.filled_pipe:
            if self.btlbw >= self.full_bw * 1.25:
                self.full_bw = self.btlbw
                self.full_bw_count = 0
            else:
                self.full_bw_count += 1
                if self.full_bw_count >= 3:
                    self.filled_pipe = True
        expired = now - self.rtprop_stamp > 10_000.0
        if f.latest_rtt <= self.rtprop or expired:
            self.rtprop = f.latest_rtt
            self.rtprop_stamp = now
        bdp = self.bdp()
        if self.mode == _STARTUP and self.filled_pipe:
            self.mode = _DRAIN
            self.pacing_gain = 1.0 / _HIGH_GAIN
            self.cwnd_gain = _HIGH_GAIN
        if self.mode == _DRAIN and f.inflight <= bdp:
            self._enter_probe_bw(now)
        elif self.mode == _PROBE_BW:
            g = self.pacing_gain
            full = now - self.cycle_stamp > self.rtprop
            if (
                (g == 1.0 and full)
                or (g > 1.0 and full and f.inflight >= g * bdp)
                or (g < 1.0 and (full or f.inflight <= bdp))
            ):
                self.cycle_index = (self.cycle_index + 1) % 8
                self.cycle_stamp = now
                self.pacing_gain = _CYCLE[self.cycle_index]
        if expired and self.mode != _PROBE_RTT:
            self.mode = _PROBE_RTT
            self.pacing_gain = 1.0
            self.prior_cwnd = f.cwnd
            self.probe_rtt_done = -1.0
        if self.mode == _PROBE_RTT:
            if self.probe_rtt_done < 0.0 and f.inflight <= 4:
                self.probe_rtt_done = now + 200.0
                self.probe_rtt_round_done = False
                self.next_round_delivered = f.delivered
            elif self.probe_rtt_done >= 0.0:
                if round_start:
                    self.probe_rtt_round_done = True
                if self.probe_rtt_round_done and now > self.probe_rtt_done:
                    self.rtprop_stamp = now
                    f.cwnd = max(f.cwnd, self.prior_cwnd)
                    if self.filled_pipe:
                        self._enter_probe_bw(now)
                    else:
                        self.mode = _STARTUP
                        self.pacing_gain = self.cwnd_gain = _HIGH_GAIN
        # pacing: before the pipe is full only ever increase (Linux bbr_set_pacing_rate)
        if self.btlbw > 0.0:
            rate = self.pacing_gain * self.btlbw
            if self.filled_pipe or rate > f.pacing_rate:
                f.pacing_rate = rate
        # cwnd
        target = self.cwnd_gain * bdp + 3.0 if bdp > 0 else f.cwnd
        if self.filled_pipe:
            f.cwnd = min(f.cwnd + acked, target)
        elif f.cwnd < target or f.delivered < 10:
            f.cwnd += acked
        if f.cwnd < 4.0:
            f.cwnd = 4.0
        if self.mode == _PROBE_RTT and f.cwnd > 4.0:
            f.cwnd = 4.0

    def _enter_probe_bw(self, now: float) -> None:
        self.mode = _PROBE_BW
        self.cwnd_gain = 2.0
        # random start phase, never the draining 0.75 one
        self.cycle_index = self._rng.choice((0, 2, 3, 4, 5, 6, 7))
        self.pacing_gain = _CYCLE[self.cycle_index]
        self.cycle_stamp = now

    def on_loss(
        self, f: Flow, now: float, n_lost: int, newest_sent: float, persistent: bool
    ) -> None:
        if persistent:
            f.cwnd = f.min_cwnd


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
