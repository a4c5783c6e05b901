"""netsim's link against a line-by-line transcription of mahimahi's ``LinkQueue``.

The transcription follows mahimahi's ``src/frontend/link_queue.cc`` (``read_packet``,
``rationalize``, ``use_a_delivery_opportunity``) and ``src/packet/drop_tail_packet_queue.hh``
with mahimahi's millisecond clock (``timestamp()`` truncates ``CLOCK_REALTIME`` to whole ms). It
is deliberately naive: one loop iteration per delivery opportunity.

The policer scenarios (Pantheon 7-12: a 1-packet droptail queue on 12, 60 or 108 Mbps traces)
behave identically at all three rates in mahimahi itself: every arrival at ms ``t`` runs
``rationalize(t)`` first, which burns all opportunities due at ``t``, so the arriving packet can
only use opportunities after ``t``; a second arrival in the same ms finds the first still
waiting and is dropped. At most one packet enters the queue per ms, so at most one leaves per ms
(12 Mbit/s of 1500-byte packets), whatever the trace rate.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from rlfleet.envs.netsim.link import Link
from rlfleet.envs.netsim.schedule import ConstantSchedule, TableSchedule

PACKET_SIZE = 1504


class MahimahiLinkQueue:
    """mahimahi's ``LinkQueue`` with a droptail queue, transcribed; times in whole ms."""

    def __init__(self, schedule: list[int], packets: int = 0, nbytes: int = 0) -> None:
        self.schedule = schedule
        self.next_delivery = 0
        self.base_timestamp = 0
        self.packet_limit = packets  # 0 = no limit, as mahimahi's get_arg default
        self.byte_limit = nbytes
        self.queue: deque[tuple[int, int]] = deque()  # (id, size)
        self.queue_bytes = 0
        self.in_transit: tuple[int, int] | None = None
        self.in_transit_bytes_left = 0
        self.departures: dict[int, int] = {}

    def next_delivery_time(self) -> int:
        return self.schedule[self.next_delivery] + self.base_timestamp

    def use_a_delivery_opportunity(self) -> None:
        self.next_delivery = (self.next_delivery + 1) % len(self.schedule)
        if self.next_delivery == 0:  # wraparound
            self.base_timestamp += self.schedule[-1]

    def rationalize(self, now: int) -> None:
        while self.next_delivery_time() <= now:
            this_delivery_time = self.next_delivery_time()
            bytes_left_in_this_delivery = PACKET_SIZE
            self.use_a_delivery_opportunity()
            while bytes_left_in_this_delivery > 0:
                if not self.in_transit_bytes_left:
                    if not self.queue:
                        break
                    self.in_transit = self.queue.popleft()
                    self.queue_bytes -= self.in_transit[1]
                    self.in_transit_bytes_left = self.in_transit[1]
                amount = min(bytes_left_in_this_delivery, self.in_transit_bytes_left)
                self.in_transit_bytes_left -= amount
                bytes_left_in_this_delivery -= amount
                if self.in_transit_bytes_left == 0:
                    self.departures[self.in_transit[0]] = this_delivery_time

    def good_with(self, size_bytes: int, size_packets: int) -> bool:
        ok = True
        if self.byte_limit:
            ok &= size_bytes <= self.byte_limit
        if self.packet_limit:
            ok &= size_packets <= self.packet_limit
        return ok

    def read_packet(self, now: int, pid: int, size: int) -> None:
        self.rationalize(now)
        if self.good_with(self.queue_bytes + size, len(self.queue) + 1):  # droptail enqueue
            self.queue.append((pid, size))
            self.queue_bytes += size


def _pantheon_trace(mbps: int) -> list[int]:
    # Pantheon's 12mbps / 60mbps / 108mbps trace files: 1, 5 or 9 lines of "1"
    return [1] * (mbps // 12)


def _drive(arrivals: np.ndarray, sizes: np.ndarray, mbps: int, packets: int, horizon: int):
    mm = MahimahiLinkQueue(_pantheon_trace(mbps), packets=packets)
    link = Link(ConstantSchedule(mbps), limit_packets=packets)
    ours = {}
    for i, (a, s) in enumerate(zip(arrivals, sizes, strict=True)):
        mm.read_packet(int(a), i, int(s))
        d = link.enqueue(float(a), int(s))
        if d >= 0:
            ours[i] = d
    mm.rationalize(horizon + 2000)  # long enough to drain every queue used here
    return mm.departures, ours


@pytest.mark.parametrize("packets", [1, 3, 40])
@pytest.mark.parametrize("mbps", [12, 60, 108])
def test_link_departures_equal_mahimahi_transcription(mbps: int, packets: int) -> None:
    rng = np.random.default_rng(mbps + packets)
    horizon = 600
    arrivals = np.sort(rng.uniform(0, horizon - 100, size=6 * (horizon - 100)))
    sizes = rng.choice([64, 1252, 1500], size=len(arrivals))
    theirs, ours = _drive(arrivals, sizes, mbps, packets, horizon)
    assert len(ours) > 0
    assert ours == theirs  # same packets accepted, same departure ms


def test_table_schedule_link_equals_mahimahi_on_the_same_trace() -> None:
    times = [1, 1, 1, 4, 4, 9, 9, 9, 9, 12]
    rng = np.random.default_rng(5)
    arrivals = np.sort(rng.uniform(0, 400, size=1500))
    sizes = rng.choice([64, 1500], size=len(arrivals))
    mm = MahimahiLinkQueue(times, packets=2)
    link = Link(TableSchedule(times), limit_packets=2)
    ours = {}
    for i, (a, s) in enumerate(zip(arrivals, sizes, strict=True)):
        mm.read_packet(int(a), i, int(s))
        d = link.enqueue(float(a), int(s))
        if d >= 0:
            ours[i] = d
    mm.rationalize(500)
    assert ours == mm.departures


@pytest.mark.parametrize("packets", [1, 100])
def test_one_packet_queue_caps_every_rate_at_one_packet_per_ms(packets: int) -> None:
    # a saturating sender (10 packets of 1500 B offered per ms = 120 Mbit/s)
    rng = np.random.default_rng(0)
    horizon = 1000
    arrivals = np.sort(rng.uniform(0, horizon, size=10 * horizon))
    sizes = np.full(len(arrivals), 1500)
    rates = {}
    for mbps in (12, 60, 108):
        theirs, ours = _drive(arrivals, sizes, mbps, packets, horizon)
        assert ours == theirs
        done = sum(1 for d in ours.values() if d <= horizon)
        rates[mbps] = done * 1500 * 8 / horizon / 1000
    if packets == 1:
        # mahimahi and netsim alike: one packet per ms at every trace rate
        assert rates == {12: 12.0, 60: 12.0, 108: 12.0}
    else:
        # with room to queue, the same sender fills each trace (1504 B per opportunity)
        for mbps, r in rates.items():
            assert r == pytest.approx(mbps * 1504 / 1500, rel=0.01)
