"""Model-based control: BBR v1 (paces at its bottleneck-bandwidth estimate and caps the window
at a multiple of the estimated BDP)."""

from __future__ import annotations

import math
import random
from collections import deque
from typing import TYPE_CHECKING

from rlfleet.envs.netsim.cc.base import CongestionController

if TYPE_CHECKING:
    from rlfleet.envs.netsim.flow import Flow


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
