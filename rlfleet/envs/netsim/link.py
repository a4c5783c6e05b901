"""A mahimahi ``mm-link`` bottleneck: droptail queue drained by delivery opportunities.

Because the queue is FIFO and the opportunity schedule does not depend on later arrivals, a
packet's departure time is fully determined when it is enqueued (given the packets ahead of it).
So the link needs **no per-opportunity events**: :meth:`Link.enqueue` returns the departure
time directly and the engine schedules one event per packet. This is exact, not an approximation:

* a packet arriving at time ``a`` may use opportunities at integer ms ``> floor(a)``
  (mahimahi burns the opportunities due at ``now`` before it enqueues the new packet);
* 1504 bytes per opportunity; a packet can straddle opportunities and several small packets can
  share one; bytes of an opportunity that find the queue empty are wasted;
* droptail counts only packets still *waiting* (mahimahi dequeues the head packet when its first
  byte is sent) and accepts iff packets <= limit and bytes <= limit after adding it.
"""

from __future__ import annotations

import math
from collections import deque

from rlfleet.envs.netsim.schedule import OPPORTUNITY_BYTES, Schedule
from rlfleet.errors import ConfigError


class Link:
    """One direction's bottleneck queue and link.

    Args:
        schedule: delivery opportunities.
        limit_packets: droptail packet limit (``None`` = unlimited).
        limit_bytes: droptail byte limit (``None`` = unlimited).
    """

    __slots__ = (
        "schedule",
        "limit_packets",
        "limit_bytes",
        "_k",
        "_tk",
        "_left",
        "_q_start",
        "_q_size",
        "q_bytes",
        "arrived",
        "dropped",
        "departed_bytes",
        "last_departure",
    )

    def __init__(
        self, schedule: Schedule, limit_packets: int | None = None, limit_bytes: int | None = None
    ) -> None:
        for name, v in (("limit_packets", limit_packets), ("limit_bytes", limit_bytes)):
            if v is not None and (not isinstance(v, int) or v < 0):
                raise ConfigError(f"{name} must be a non-negative int or None, got {v!r}")
        self.schedule = schedule
        self.limit_packets = limit_packets
        self.limit_bytes = limit_bytes
        self._k = -1  # index of the opportunity last (partly) used
        self._tk = -1  # its time
        self._left = 0  # bytes left in it
        self._q_start: deque[int] = deque()  # start-of-service ms of waiting packets (FIFO)
        self._q_size: deque[int] = deque()
        self.q_bytes = 0
        self.arrived = 0
        self.dropped = 0
        self.departed_bytes = 0
        self.last_departure = 0

    def queue_at(self, t: float) -> tuple[int, int]:
        """(packets, bytes) waiting at time ``t`` (must not be earlier than the last enqueue)."""
        self._expire(int(math.floor(t)))
        return len(self._q_start), self.q_bytes

    def _expire(self, ft: int) -> None:
        qs = self._q_start
        while qs and qs[0] <= ft:
            qs.popleft()
            self.q_bytes -= self._q_size.popleft()

    def enqueue(self, a: float, size: int) -> int:
        """Offer a packet of ``size`` bytes at time ``a`` (ms). Returns departure ms, or -1 if dropped.

        Calls must come in non-decreasing ``a``.
        """
        fa = int(a)  # a >= 0, so int() floors
        qs = self._q_start
        if qs and qs[0] <= fa:
            self._expire(fa)
        self.arrived += 1
        lp = self.limit_packets
        if lp is not None and len(qs) + 1 > lp:
            self.dropped += 1
            return -1
        lb = self.limit_bytes
        if lb is not None and self.q_bytes + size > lb:
            self.dropped += 1
            return -1
        sched = self.schedule
        left = self._left
        if left > 0 and self._tk > fa:
            # the opportunity the previous packet finished in is still in the future: share it
            k = self._k
            tk = self._tk
        else:
            k = sched.first_after(fa)
            if k <= self._k:
                k = self._k + 1
            tk = sched.time(k)
            left = OPPORTUNITY_BYTES
        start = tk
        k0 = k
        s = size
        while s > left:
            s -= left
            k += 1
            left = OPPORTUNITY_BYTES
        left -= s
        if k != k0:
            tk = sched.time(k)
        self._k = k
        self._tk = tk
        self._left = left
        qs.append(start)
        self._q_size.append(size)
        self.q_bytes += size
        self.departed_bytes += size
        self.last_departure = tk
        return tk
