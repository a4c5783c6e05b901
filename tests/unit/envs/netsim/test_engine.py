"""Engine invariants, conservation, determinism and fixed-window closed forms (fast).

The controllers' closed forms are tested beside them, in tests/unit/envs/netsim/cc/."""

from __future__ import annotations

import numpy as np
import pytest

from rlfleet.envs.netsim.cc import Cubic, FixedCwnd, make_controller
from rlfleet.envs.netsim.scenarios import PANTHEON, Scenario, Trace, build_network
from rlfleet.errors import ConfigError


def _run(sc: Scenario, cc, ms: float, seed: int = 0, **kw):
    net = build_network(sc, seed)
    f = net.add_flow(cc, **kw)
    net.run_until(ms)
    return net, f


def _check_conservation(net, f) -> None:
    # network side: every packet sent is delivered, dropped, randomly lost or still on its way
    in_queue_or_link = f.sent_pkts - len(f.rx_pns) - f.q_dropped - f.rand_lost
    assert in_queue_or_link == net.pending_deliveries(f)
    # sender side: every packet sent is acked, declared lost or still counted in flight
    assert f.sent_pkts == f.acked_pkts + f.lost_pkts + f.inflight
    assert f.inflight == len(f.outstanding) + len(f.suspects)


@pytest.mark.parametrize(
    "name",
    ["nepal_to_aws_india", "policer_12mbps_20ms", "buffer_bdp_div_10", "ack_aggregation_100ms"],
)
@pytest.mark.parametrize("scheme", ["cubic", "bbr", "copa", "vegas", "newreno"])
def test_conservation_and_invariants(name: str, scheme: str) -> None:
    sc = PANTHEON[name]
    net, f = _run(sc, make_controller(scheme, 1), 3000, seed=1)
    _check_conservation(net, f)
    owd = np.asarray(f.owds)
    assert len(owd) > 0
    assert owd.min() >= sc.delay_ms  # one-way delay never below propagation
    assert f.min_cwnd <= f.cwnd <= f.max_cwnd
    # delivered bytes never exceed the opportunities offered (1504 B each) up to the last arrival
    sched = net.up.schedule
    cap = sched.first_after(int(max(f.rx_times) - sc.delay_ms)) * 1504
    assert len(f.rx_times) * f.mss <= cap
    # acks are cumulative and in order: receiver log is increasing
    assert all(b > a for a, b in zip(f.rx_pns, f.rx_pns[1:], strict=False))


def test_queue_never_exceeds_limit() -> None:
    sc = PANTHEON["buffer_bdp_div_3"]  # 30 000 bytes
    net = build_network(sc, 0)
    f = net.add_flow(FixedCwnd(300))
    worst = 0
    for t in range(0, 2000, 7):
        net.run_until(t)
        worst = max(worst, net.up.queue_at(t)[1])
    assert 30_000 - 1500 < worst <= 30_000
    assert net.up.dropped > 0 and f.q_dropped == net.up.dropped


def test_seeded_runs_are_deterministic() -> None:
    sc = PANTHEON["nepal_to_aws_india"]  # has IID loss, so the seed matters
    a = _run(sc, Cubic(), 5000, seed=7)[1]
    b = _run(sc, Cubic(), 5000, seed=7)[1]
    c = _run(sc, Cubic(), 5000, seed=8)[1]
    assert a.rx_pns == b.rx_pns and a.owds == b.owds and a.cwnd == b.cwnd
    assert a.rx_pns != c.rx_pns


def test_fixed_cwnd_bdp_plus_queue_fills_queue_and_p95_is_d_plus_q_over_c() -> None:
    sc = Scenario("q50", Trace("constant", rate_mbps=12), None, 20, up_queue_packets=50)
    cwnd = sc.bdp_packets() + 50 + 2
    net, f = _run(sc, FixedCwnd(cwnd), 10_000, ack_every=1)
    owd = np.asarray(f.owds)[len(f.owds) // 4 :]  # skip the start
    p95 = float(np.percentile(owd, 95, method="nearest"))
    expect = sc.delay_ms + 50 * 1500 / 1504  # D + Q / C with C = 1504 B/ms
    assert p95 == pytest.approx(expect, rel=0.03)
    assert net.up.queue_at(net.now)[0] >= 48  # full (one may be in service)
    tput = len(f.rx_times) * 1500 / 10_000  # bytes/ms
    assert tput == pytest.approx(1504, rel=0.02)


def test_multiple_flows_staggered_share_the_link() -> None:
    sc = PANTHEON["buffer_bdp"]
    net = build_network(sc, 0)
    flows = [net.add_flow(Cubic(), start_ms=i * 2000.0) for i in range(3)]
    net.run_until(12_000)
    for i, f in enumerate(flows):
        assert min(f.rx_times) > i * 2000
        _check_conservation(net, f)
    late = [sum(1 for t in f.rx_times if t > 8000) for f in flows]
    x = np.asarray(late, dtype=float)
    assert (x.sum() ** 2) / (3 * (x**2).sum()) > 0.6  # all three get a real share
    with pytest.raises(ConfigError, match="start_ms"):
        net.add_flow(Cubic(), start_ms=0.0)
