"""mahimahi semantics of schedules and the droptail link, against hand-derived closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from rlfleet.envs.netsim.link import Link
from rlfleet.envs.netsim.schedule import (
    OPPORTUNITY_BYTES,
    ConstantSchedule,
    TableSchedule,
    poisson_times,
    read_trace,
)
from rlfleet.errors import ConfigError


def _naive_first_after(sched, t: int, n: int = 10_000) -> int:
    return sum(1 for k in range(n) if sched.time(k) <= t)


def test_constant_12mbps_is_one_opportunity_per_ms() -> None:
    s = ConstantSchedule(12)
    assert [s.time(k) for k in range(5)] == [1, 2, 3, 4, 5]
    assert s.first_after(0) == 0 and s.first_after(7) == 7
    assert s.mean_mbps == pytest.approx(1504 * 8 / 1000)


def test_constant_calibrated_trace_length_matches_pantheon_file() -> None:
    # Pantheon's 100.42mbps trace has 502,100 lines over 60 s.
    assert ConstantSchedule(100.42).first_after(60_000) == 502_100
    s = ConstantSchedule(100.42)
    per_ms = [s.first_after(t + 1) - s.first_after(t) for t in range(1000)]
    assert set(per_ms) == {8, 9}  # evenly interleaved 8 or 9 per ms


@pytest.mark.parametrize("rate", [0.57, 12, 77.72, 114.68])
def test_constant_time_and_first_after_agree(rate: float) -> None:
    s = ConstantSchedule(rate)
    for t in (0, 1, 5, 17, 333):
        k = s.first_after(t)
        assert s.time(k) > t
        assert k == 0 or s.time(k - 1) <= t


def test_table_schedule_loops_with_last_timestamp_as_period() -> None:
    s = TableSchedule([200] * 10)
    assert [s.time(k) for k in (0, 9, 10, 19, 20)] == [200, 200, 400, 400, 600]
    s2 = TableSchedule([1, 1, 3, 7])
    for t in range(40):
        assert s2.first_after(t) == _naive_first_after(s2, t, 200)


def test_table_schedule_rejects_bad_input(tmp_path) -> None:
    with pytest.raises(ConfigError, match="non-decreasing"):
        TableSchedule([5, 3])
    bad = tmp_path / "bad.trace"
    bad.write_text("1\nx\n")
    with pytest.raises(ConfigError, match="line 2"):
        read_trace(bad)
    good = tmp_path / "good.trace"
    good.write_text("1\n1\n2\n")
    assert read_trace(good) == [1, 1, 2]


def test_poisson_trace_has_warmup_and_rate() -> None:
    ts = poisson_times(2.64, duration_ms=60_000, warmup_ms=5000, seed=3)
    assert ts[:50] == list(range(100, 5001, 100))
    after = [t for t in ts[50:] if t <= 60_000]
    rate_mbps = len(after) * 1500 * 8 / 55_000 / 1000
    assert rate_mbps == pytest.approx(2.64, rel=0.03)
    assert ts[-1] == 60_000


def test_12mbps_link_delivers_exactly_1504_bytes_per_ms() -> None:
    link = Link(ConstantSchedule(12))
    deps = [link.enqueue(0.0, 1500) for _ in range(3000)]
    # the n-th 1500-byte packet finishes in the opportunity holding its last byte
    expect = [-(-(n + 1) * 1500 // OPPORTUNITY_BYTES) for n in range(3000)]
    assert deps == expect
    # bytes finished by ms T = 1504 T (to within one packet): exactly 1504 B/ms
    d = np.array(deps)
    for T in (100, 1000, 2990):
        done = int((d <= T).sum()) * 1500
        assert 1504 * T - 1500 < done <= 1504 * T


def test_unused_opportunities_are_wasted() -> None:
    link = Link(ConstantSchedule(12))
    assert link.enqueue(5.5, 1504) == 6  # first opportunity strictly after floor(arrival)
    assert link.enqueue(5.7, 1504) == 7
    # idle from 7 to 10: no credit, so two packets at t=10 leave at 11 and 12
    assert link.enqueue(10.0, 1504) == 11
    assert link.enqueue(10.0, 1504) == 12
    # small packets share one opportunity
    assert [link.enqueue(20.0, 500) for _ in range(4)] == [21, 21, 21, 22]


def test_byte_limited_droptail_drops_exactly_at_the_limit() -> None:
    link = Link(ConstantSchedule(12), limit_bytes=9000)
    acc = [link.enqueue(0.5, 1500) >= 0 for _ in range(8)]
    assert acc == [True] * 6 + [False] * 2  # 6 x 1500 = 9000 fits, the 7th would be 10500
    link2 = Link(ConstantSchedule(12), limit_bytes=9000)
    acc2 = [link2.enqueue(0.5, 1000) >= 0 for _ in range(10)]
    assert acc2 == [True] * 9 + [False]
    # opportunity at ms 1 (1504 B) finishes packet 1 and starts packet 2, so both leave the
    # queue: 7000 B wait, two more 1000 B packets fit and the third is dropped
    assert [link2.enqueue(1.0, 1000) >= 0 for _ in range(3)] == [True, True, False]
    assert link2.dropped == 2 and link2.arrived == 13


def test_packet_limit_counts_waiting_packets_only() -> None:
    link = Link(ConstantSchedule(12), limit_packets=1)
    assert link.enqueue(0.2, 1500) == 1
    assert link.enqueue(0.3, 1500) == -1  # one already waiting
    assert link.enqueue(1.0, 1500) == 2  # the first is in transit since ms 1
    assert link.queue_at(1.5) == (1, 1500)


def test_link_rejects_bad_limits() -> None:
    with pytest.raises(ConfigError, match="limit_packets"):
        Link(ConstantSchedule(12), limit_packets=-1)
    with pytest.raises(ConfigError, match="rate"):
        ConstantSchedule(0)
