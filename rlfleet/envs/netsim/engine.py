"""Event-driven packet-level simulator of one bottleneck path (mahimahi semantics).

Data path (Pantheon's nesting ``mm-delay D mm-loss uplink p mm-link up down``, sender innermost)::

    sender --> uplink droptail queue --> uplink opportunities --> IID loss --> +D --> receiver
    sender <-- downlink opportunities <-- downlink droptail queue <-- +D <-- receiver (ACKs)

Time is in float milliseconds. Because every stage is FIFO with a fixed delay, a packet's link
departure is computed when it is enqueued (see :mod:`.link`), so the heap holds only one event per
data packet (arrival at the receiver), one per ACK (arrival at the sender) and a few lazily
re-armed timers per flow. Everything is plain floats/ints, tuples and ``__slots__`` for speed.

Senders are window-limited QUIC-like transports: RFC 9002 RTT estimator (srtt, rttvar, min and
latest RTT, ack-delay adjustment), loss detection by packet threshold (3) and time threshold
(9/8 RTT, 1 ms granularity), PTO with exponential backoff, persistent congestion, and optional
pacing. Retransmissions go out as new packets (QUIC style). The receiver ACKs every ``ack_every``
packets, immediately on a gap, or after ``ack_timer_ms``; ACKs are cumulative (they report every
packet received so far), so a lost ACK is repaired by the next one, as with QUIC ACK ranges.

This module is the event loop (:class:`Network`); each flow's state and per-flow RFC 9002
quantities are :class:`~rlfleet.envs.netsim.flow.Flow` (:mod:`.flow`), and the loss RNG is
:class:`~rlfleet.envs.netsim.rng.SplitMix64` (:mod:`.rng`). Both stay importable from here.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import TYPE_CHECKING

from rlfleet.envs.netsim.flow import INITIAL_RTT_MS, Flow
from rlfleet.envs.netsim.link import Link
from rlfleet.envs.netsim.rng import SplitMix64
from rlfleet.errors import ConfigError

if TYPE_CHECKING:
    from rlfleet.envs.netsim.cc.base import CongestionController

__all__ = ["INITIAL_RTT_MS", "Flow", "Network", "SplitMix64"]

_EV_RX = 0
_EV_ACK = 1
_EV_TIMER = 2
_EV_RXTIMER = 3
_EV_START = 4
_INF = math.inf


class Network:
    """The simulator: one bottleneck path shared by any number of flows.

    Args:
        up, down: the data-direction and ACK-direction links (queue + schedule).
        delay_up_ms, delay_down_ms: one-way propagation delay per direction.
        loss_up, loss_down: IID loss probability applied *after* the link (consumes capacity).
        seed: seeds the loss RNG (and nothing else: the engine is otherwise deterministic).
    """

    __slots__ = (
        "up",
        "down",
        "delay_up",
        "delay_down",
        "loss_up",
        "loss_down",
        "flows",
        "now",
        "_heap",
        "_seq",
        "_rng",
        "random_lost",
        "ack_lost",
        "pacing_quantum",
        "events",
    )

    def __init__(
        self,
        up: Link,
        down: Link,
        *,
        delay_up_ms: float = 0.0,
        delay_down_ms: float = 0.0,
        loss_up: float = 0.0,
        loss_down: float = 0.0,
        seed: int = 0,
    ) -> None:
        for name, p in (("loss_up", loss_up), ("loss_down", loss_down)):
            if not 0.0 <= p < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {p!r}")
        for name, d in (("delay_up_ms", delay_up_ms), ("delay_down_ms", delay_down_ms)):
            if not (d >= 0 and math.isfinite(d)):
                raise ConfigError(f"{name} must be >= 0 and finite, got {d!r}")
        self.up = up
        self.down = down
        self.delay_up = float(delay_up_ms)
        self.delay_down = float(delay_down_ms)
        self.loss_up = float(loss_up)
        self.loss_down = float(loss_down)
        self.flows: list[Flow] = []
        self.now = 0.0
        self._heap: list[tuple] = []
        self._seq = itertools.count()
        self._rng = SplitMix64(seed)
        self.random_lost = 0
        self.ack_lost = 0
        self.pacing_quantum = 1.0
        self.events = 0

    # ------------------------------------------------------------------ setup
    def add_flow(self, cc: CongestionController, **kwargs: float) -> Flow:
        """Attach a flow with controller ``cc``; kwargs go to :class:`Flow` (start_ms, mss, ...)."""
        f = Flow(len(self.flows), cc, **kwargs)
        if f.start_ms < self.now:
            raise ConfigError(f"flow start_ms={f.start_ms} is before the current time {self.now}")
        self.flows.append(f)
        heapq.heappush(self._heap, (f.start_ms, next(self._seq), _EV_START, f, 0, 0.0))
        return f

    # ------------------------------------------------------------------ main loop
    def run_until(self, t_end: float) -> None:
        """Process every event with time <= ``t_end`` and set ``now = t_end``."""
        heap = self._heap
        pop = heapq.heappop
        n = 0
        while heap and heap[0][0] <= t_end:
            t, _, kind, f, a, b = pop(heap)
            self.now = t
            n += 1
            if kind == _EV_ACK:
                self._on_ack(f, t, a, b)
            elif kind == _EV_RX:
                self._on_rx(f, t, a, b)
            elif kind == _EV_TIMER:
                if t == f.timer_at:
                    self._on_timer(f, t)
            elif kind == _EV_RXTIMER:
                if f.rx_pending and t == f.rx_timer_at:
                    self._send_ack(f, t)
            else:  # _EV_START
                f.started = True
                f.last_send_time = t
                f.cc.on_start(f, t)
                self._send(f, t)
                self._arm(f, t)
        self.events += n
        if t_end > self.now:
            self.now = t_end

    def kick(self, f: Flow) -> None:
        """Let ``f`` send now (after an external cwnd change) and re-arm its timers."""
        self._send(f, self.now)
        self._arm(f, self.now)

    def pending_deliveries(self, f: Flow) -> int:
        """Data packets of ``f`` past the bottleneck but not yet at the receiver."""
        return sum(1 for e in self._heap if e[2] == _EV_RX and e[3] is f)

    def next_event_time(self) -> float:
        """Time of the next pending event (inf if none)."""
        return self._heap[0][0] if self._heap else _INF

    # ------------------------------------------------------------------ sender
    def _send(self, f: Flow, now: float) -> None:
        if not f.started:
            return
        up = self.up
        heap = self._heap
        seq = self._seq
        dly = self.delay_up
        loss = self.loss_up
        rnd = self._rng.random
        mss = f.mss
        out = f.outstanding
        rate = f.pacing_rate
        q = self.pacing_quantum
        while f.inflight < f.cwnd:
            if rate > 0.0:
                nst = f.next_send_time
                if nst > now + q:
                    self._arm_at(f, nst - q)
                    break
                f.next_send_time = (nst if nst > now - q else now - q) + 1.0 / rate
            pn = f.next_pn
            f.next_pn = pn + 1
            if f.retx_debt > 0:
                f.retx_debt -= 1
                f.retx_pkts += 1
            out.append((pn, now, f.delivered, f.delivered_time, f.first_sent_time))
            f.inflight += 1
            f.sent_pkts += 1
            f.last_send_time = now
            dep = up.enqueue(now, mss)
            if dep < 0:
                f.q_dropped += 1
            else:
                if loss and rnd() < loss:
                    self.random_lost += 1
                    f.rand_lost += 1
                else:
                    heapq.heappush(heap, (dep + dly, next(seq), _EV_RX, f, pn, now))

    def _send_probes(self, f: Flow, now: float, n: int) -> None:
        """PTO probes: ignore cwnd and pacing (RFC 9002 6.2.4)."""
        saved_cwnd, saved_rate = f.cwnd, f.pacing_rate
        f.cwnd = f.inflight + n
        f.pacing_rate = 0.0
        debt = f.retx_debt
        self._send(f, now)
        f.timeout_rtx_pkts += min(debt, n)
        f.cwnd, f.pacing_rate = saved_cwnd, saved_rate

    def _arm_at(self, f: Flow, t: float) -> None:
        if t < f.timer_at:
            f.timer_at = t
            heapq.heappush(self._heap, (t, next(self._seq), _EV_TIMER, f, 0, 0.0))

    def _arm(self, f: Flow, now: float) -> None:
        """(Re)arm the flow timer to the earliest of loss timer and PTO."""
        t = _INF
        if f.suspects:
            t = f.suspects[0][1] + f.loss_delay()
        if f.inflight > 0:
            pto = f.last_send_time + f.pto_base() * (1 << min(f.pto_count, 16))
            if pto < t:
                t = pto
        if t < _INF:
            self._arm_at(f, t if t > now else now)

    def _on_timer(self, f: Flow, now: float) -> None:
        f.timer_at = _INF
        lost = None
        if f.suspects and f.suspects[0][1] + f.loss_delay() <= now:
            lost = self._detect_losses(f, now)
        if lost:
            self._handle_losses(f, now, lost)
            if f.recorder is not None:
                f.record(now, 0, len(lost), 0.0)
        elif f.inflight > 0:
            pto = f.last_send_time + f.pto_base() * (1 << min(f.pto_count, 16))
            if pto <= now:
                f.pto_count += 1
                f.total_pto += 1
                self._send_probes(f, now, 2)
                if f.recorder is not None:
                    f.record(now, 0, 0, 0.0)
        self._send(f, now)
        self._arm(f, now)

    def _detect_losses(self, f: Flow, now: float) -> list[tuple]:
        sus = f.suspects
        la = f.largest_acked
        ld = f.loss_delay()
        lost = []
        while sus:
            r = sus[0]
            # same expression as the timer deadline in _arm, so float rounding cannot disagree
            if la - r[0] >= 3 or r[1] + ld <= now:
                lost.append(sus.popleft())
            else:
                break
        return lost

    def _handle_losses(self, f: Flow, now: float, lost: list[tuple]) -> None:
        n = len(lost)
        f.inflight -= n
        f.lost_pkts += n
        f.retx_debt += n
        persistent = False
        if n >= 2 and f.has_rtt:
            span = lost[-1][1] - lost[0][1]
            persistent = span > 3.0 * f.pto_base()
        # the controller decides what persistent congestion means (fixed-cwnd and RL ignore it)
        f.cc.on_loss(f, now, n, lost[-1][1], persistent)
        f.clamp_cwnd()
        f.persistent = persistent

    def _on_ack(self, f: Flow, now: float, end: int, ack_delay: float) -> None:
        start = f.seen
        if end <= start:
            return
        f.seen = end
        f.ack_bytes_recv += f.ack_size
        rx = f.rx_pns
        out = f.outstanding
        sus = f.suspects
        acked = 0
        newest = None
        for i in range(start, end):
            pn = rx[i]
            while out and out[0][0] < pn:
                sus.append(out.popleft())
            if out and out[0][0] == pn:
                newest = out.popleft()
                acked += 1
        lrtt = 0.0
        if newest is not None:
            f.largest_acked = newest[0]
            lrtt = now - newest[1]
            f.latest_rtt = lrtt
            if now > f.srtt_mark:  # the srtt settled before this ms (the receiver's timer)
                f.srtt_prev = f.srtt
                f.srtt_mark = now
            if not f.has_rtt:
                f.has_rtt = True
                f.min_rtt = lrtt
                f.srtt = lrtt
                f.rttvar = lrtt / 2.0
            else:
                if lrtt < f.min_rtt:
                    f.min_rtt = lrtt
                adj = lrtt - ack_delay if lrtt - ack_delay >= f.min_rtt else lrtt
                f.rttvar = 0.75 * f.rttvar + 0.25 * abs(f.srtt - adj)
                f.srtt = 0.875 * f.srtt + 0.125 * adj
            if f.track_standing:
                st = f.standing_window
                while st and st[-1][1] >= lrtt:
                    st.pop()
                st.append((now, lrtt))
                lo = now - f.srtt / 2.0
                while st[0][0] < lo:
                    st.popleft()
                f.rtt_standing = st[0][1]
            f.inflight -= acked
            f.acked_pkts += acked
            f.delivered += acked
            f.delivered_time = now
            f.rs_delivered = f.delivered - newest[2]
            iv = now - newest[3]
            sv = newest[1] - newest[4]
            f.rs_interval = iv if iv > sv else sv
            f.first_sent_time = newest[1]
            f.pto_count = 0
        n_lost = 0
        if sus:
            lost = self._detect_losses(f, now)
            if lost:
                n_lost = len(lost)
        if acked:
            f.cc.on_ack(f, now, acked, newest)
            f.clamp_cwnd()
        if n_lost:
            self._handle_losses(f, now, lost)
        if f.recorder is not None:
            f.record(now, acked, n_lost, ack_delay)
        self._send(f, now)
        self._arm(f, now)

    # ------------------------------------------------------------------ receiver
    def _on_rx(self, f: Flow, now: float, pn: int, t_sent: float) -> None:
        f.rx_pns.append(pn)
        f.rx_times.append(now)
        f.owds.append(now - t_sent)
        gap = pn != f.rx_expected
        f.rx_expected = pn + 1
        f.rx_pending += 1
        if f.rx_pending >= f.ack_every or gap:
            self._send_ack(f, now)
        elif f.rx_pending == 1:
            t = now + f.rx_ack_timer(now)
            f.rx_timer_at = t
            heapq.heappush(self._heap, (t, next(self._seq), _EV_RXTIMER, f, 0, 0.0))

    def _send_ack(self, f: Flow, now: float) -> None:
        ack_delay = now - f.rx_times[-1]
        f.rx_pending = 0
        f.rx_timer_at = -1.0
        dep = self.down.enqueue(now + self.delay_down, f.ack_size)
        if dep < 0:
            return
        if self.loss_down and self._rng.random() < self.loss_down:
            self.ack_lost += 1
            return
        heapq.heappush(self._heap, (dep, next(self._seq), _EV_ACK, f, len(f.rx_pns), ack_delay))
