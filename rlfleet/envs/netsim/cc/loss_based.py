"""Loss-based controllers: RFC 9002 NewReno and RFC 9438 CUBIC (windows grow until a loss,
then shrink once per recovery period)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rlfleet.envs.netsim.cc.base import CongestionController

if TYPE_CHECKING:
    from rlfleet.envs.netsim.flow import Flow


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
        if self.new_event(f, now, newest_sent):
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
        if self.new_event(f, now, newest_sent):
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
