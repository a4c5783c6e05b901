"""Delay-based controllers: TCP Vegas and Copa (the window follows the queueing delay they
measure, not loss)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rlfleet.envs.netsim.cc.base import CongestionController
from rlfleet.errors import ConfigError

if TYPE_CHECKING:
    from rlfleet.envs.netsim.flow import Flow


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
        if self.new_event(f, now, newest_sent):
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
