"""One flow of the event engine (:mod:`.engine`): its sender's transport state, its
controller, its receiver's ACK state and its delivery logs."""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING

from rlfleet.errors import ConfigError

if TYPE_CHECKING:
    from rlfleet.envs.netsim.cc.base import CongestionController

_INF = math.inf
#: RFC 9002 kInitialRtt (ms) used before the first sample.
INITIAL_RTT_MS = 333.0


class Flow:
    """One sender/receiver pair: transport state, congestion controller and delivery logs.

    Public read-only state useful to controllers and features (units: packets and ms):
    ``cwnd``, ``ssthresh``, ``inflight``, ``srtt``, ``rttvar``, ``min_rtt``, ``latest_rtt``,
    ``has_rtt``, ``rtt_standing``, ``delivered``, ``rs_delivered``, ``rs_interval``,
    ``pacing_rate`` (packets/ms, 0 = unpaced). Controllers set ``cwnd`` and ``pacing_rate``.
    """

    __slots__ = (
        "idx",
        "cc",
        "mss",
        "start_ms",
        "min_cwnd",
        "max_cwnd",
        "ack_every",
        "ack_timer_ms",
        "ack_timer_srtt",
        "time_threshold",
        "ack_size",
        "started",
        "cwnd",
        "ssthresh",
        "pacing_rate",
        "next_send_time",
        "next_pn",
        "outstanding",
        "suspects",
        "inflight",
        "has_rtt",
        "srtt",
        "srtt_prev",
        "srtt_mark",
        "rttvar",
        "min_rtt",
        "latest_rtt",
        "rtt_standing",
        "standing_window",
        "track_standing",
        "largest_acked",
        "pto_count",
        "total_pto",
        "last_send_time",
        "timer_at",
        "delivered",
        "delivered_time",
        "first_sent_time",
        "rs_delivered",
        "rs_interval",
        "recovery_start",
        "sent_pkts",
        "retx_pkts",
        "timeout_rtx_pkts",
        "lost_pkts",
        "acked_pkts",
        "retx_debt",
        "ack_bytes_recv",
        "rx_pns",
        "rx_times",
        "owds",
        "rx_expected",
        "rx_pending",
        "rx_timer_at",
        "seen",
        "recorder",
        "persistent",
        "q_dropped",
        "rand_lost",
    )

    def __init__(
        self,
        idx: int,
        cc: CongestionController,
        *,
        mss: int = 1500,
        start_ms: float = 0.0,
        init_cwnd: float = 10.0,
        min_cwnd: float = 2.0,
        max_cwnd: float = 2000.0,
        ack_every: int = 2,
        ack_timer_ms: float = 25.0,
        ack_size: int = 64,
        ack_timer_srtt: float = 0.0,
        time_threshold: float = 1.125,
        initial_rtt_ms: float = INITIAL_RTT_MS,
    ) -> None:
        if not 0 < min_cwnd <= init_cwnd <= max_cwnd:
            raise ConfigError(
                f"need 0 < min_cwnd <= init_cwnd <= max_cwnd, got {min_cwnd}, {init_cwnd}, {max_cwnd}"
            )
        if ack_every < 1:
            raise ConfigError(f"ack_every must be >= 1, got {ack_every}")
        if not (ack_timer_srtt >= 0 and time_threshold >= 1 and initial_rtt_ms > 0):
            raise ConfigError(
                "need ack_timer_srtt >= 0, time_threshold >= 1, initial_rtt_ms > 0, got "
                f"{ack_timer_srtt}, {time_threshold}, {initial_rtt_ms}"
            )
        if not 1 <= mss <= 1504 * 64:
            raise ConfigError(f"mss must be in [1, 96256] bytes, got {mss}")
        self.idx = idx
        self.cc = cc
        self.mss = int(mss)
        self.start_ms = float(start_ms)
        self.min_cwnd = float(min_cwnd)
        self.max_cwnd = float(max_cwnd)
        self.ack_every = int(ack_every)
        self.ack_timer_ms = float(ack_timer_ms)
        self.ack_timer_srtt = float(ack_timer_srtt)
        self.time_threshold = float(time_threshold)
        self.ack_size = int(ack_size)
        self.started = False
        self.cwnd = float(init_cwnd)
        self.ssthresh = _INF
        self.pacing_rate = 0.0
        self.next_send_time = 0.0
        self.next_pn = 0
        # records: (pn, t_sent, delivered_at_send, delivered_time_at_send, first_sent_at_send)
        self.outstanding: deque[tuple] = deque()
        self.suspects: deque[tuple] = deque()  # unacked but below the largest acked
        self.inflight = 0
        self.has_rtt = False
        self.srtt = float(initial_rtt_ms)
        self.rttvar = float(initial_rtt_ms) / 2
        # srtt before the updates of ms ``srtt_mark``: the receiver's timer reads the srtt as
        # settled before the current ms, so the order of same-ms events cannot change it
        self.srtt_prev = self.srtt
        self.srtt_mark = -_INF
        self.min_rtt = _INF
        self.latest_rtt = 0.0
        self.rtt_standing = 0.0
        # (time, rtt) samples behind rtt_standing, a monotonic deque the engine maintains
        self.standing_window: deque[tuple[float, float]] = deque()
        self.track_standing = bool(getattr(cc, "track_standing", False))
        self.largest_acked = -1
        self.pto_count = 0
        self.total_pto = 0
        self.last_send_time = 0.0
        self.timer_at = _INF
        self.delivered = 0
        self.delivered_time = 0.0
        self.first_sent_time = 0.0
        self.rs_delivered = 0
        self.rs_interval = 0.0
        self.recovery_start = -_INF
        self.sent_pkts = 0
        self.retx_pkts = 0
        self.timeout_rtx_pkts = 0
        self.lost_pkts = 0
        self.acked_pkts = 0
        self.retx_debt = 0
        self.ack_bytes_recv = 0
        self.rx_pns: list[int] = []
        self.rx_times: list[float] = []
        self.owds: list[float] = []
        self.rx_expected = 0
        self.rx_pending = 0
        self.rx_timer_at = -1.0
        self.seen = 0
        self.recorder: list | None = None
        self.persistent = False
        self.q_dropped = 0  # packets this flow lost to the uplink droptail
        self.rand_lost = 0  # packets this flow lost to uplink IID loss

    def pto_base(self) -> float:
        """RFC 9002 PTO period before backoff (ms)."""
        return self.srtt + max(4.0 * self.rttvar, 1.0) + self.ack_timer_ms

    def in_recovery(self, t_sent: float) -> bool:
        """True if a packet sent at ``t_sent`` belongs to the current recovery period."""
        return t_sent <= self.recovery_start

    def rx_ack_timer(self, now: float) -> float:
        """Delayed-ACK timer (ms): ``ack_timer_ms``, or ``min(ack_timer_srtt * srtt,
        ack_timer_ms)`` when ``ack_timer_srtt > 0`` (mvfst: srtt / 4, at most 25 ms). The
        receiver has no RTT estimate of its own here, so it uses the sender's."""
        if self.ack_timer_srtt > 0:
            srtt = self.srtt_prev if now <= self.srtt_mark else self.srtt
            t = self.ack_timer_srtt * srtt
            return t if t < self.ack_timer_ms else self.ack_timer_ms
        return self.ack_timer_ms

    def loss_delay(self) -> float:
        """RFC 9002 time threshold for declaring a packet lost: ``time_threshold`` (9/8) RTT,
        at least 1 ms."""
        r = self.srtt if self.srtt > self.latest_rtt else self.latest_rtt
        r *= self.time_threshold
        return r if r > 1.0 else 1.0

    def clamp_cwnd(self) -> None:
        """Hold ``cwnd`` inside [min_cwnd, max_cwnd] after the controller changed it."""
        c = self.cwnd
        if c < self.min_cwnd:
            self.cwnd = self.min_cwnd
        elif c > self.max_cwnd:
            self.cwnd = self.max_cwnd

    def record(self, now: float, acked: int, lost: int, ack_delay: float) -> None:
        """Append one raw state to ``recorder`` (the engine calls this only when it is set)."""
        # One mvfst-rl NetworkState per ACK-or-loss callback, kept raw (packets, ms, cumulative
        # counters); features.py differences, normalises and aggregates them with numpy.
        self.recorder.append(
            (
                now,
                self.min_rtt if self.has_rtt else 0.0,
                self.rtt_standing,
                self.latest_rtt,
                self.srtt if self.has_rtt else 0.0,
                self.rttvar if self.has_rtt else 0.0,
                self.cwnd,
                self.inflight,
                self.sent_pkts,
                self.ack_bytes_recv,
                self.retx_pkts,
                self.pto_count,
                self.total_pto,
                self.timeout_rtx_pkts,
                acked,
                lost,
                self.acked_pkts,
                1.0 if (lost and self.persistent) else 0.0,
                ack_delay,
            )
        )
