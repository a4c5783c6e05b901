"""Engine invariants, conservation, determinism and controller closed forms (fast)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from rlfleet.envs.netsim.cc import BBR, Copa, Cubic, FixedCwnd, NewReno, Vegas, make_controller
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


def _fake_flow(cwnd: float) -> SimpleNamespace:
    return SimpleNamespace(
        cwnd=cwnd, ssthresh=math.inf, recovery_start=-math.inf, srtt=100.0, min_cwnd=2.0
    )


def test_cubic_window_follows_its_cubic_curve() -> None:
    cc = Cubic()
    f = _fake_flow(100.0)
    cc.on_loss(f, 0.0, 1, 0.0, False)
    assert f.cwnd == pytest.approx(70.0) and cc.w_max == 100.0
    rtt = 100.0
    k = (100 * 0.3 / 0.4) ** (1 / 3)
    errs = []
    for ms in range(1, 5001):
        # an ACK clock: cwnd/RTT packets acked per ms, for packets sent one RTT earlier
        cc.on_ack(f, float(ms), f.cwnd / rtt, (0, ms - rtt))
        if ms >= 500 and ms % 100 == 0:
            t = ms / 1000
            w = 0.4 * (t - k) ** 3 + 100.0
            errs.append(abs(f.cwnd - w) / 100.0)
    assert cc.k == pytest.approx(k)
    assert max(errs) < 0.03  # within 3 % of W_max over 0.5-5 s
    # fast convergence: a loss below the previous W_max lowers the plateau
    f.cwnd = 90.0
    cc.on_loss(f, 6000.0, 1, 5999.0, False)
    assert cc.w_max == pytest.approx(90.0 * 1.7 / 2) and f.cwnd == pytest.approx(63.0)


def test_newreno_halves_once_per_recovery_and_grows_one_per_rtt() -> None:
    cc = NewReno()
    f = _fake_flow(40.0)
    f.ssthresh = 10.0
    cc.on_loss(f, 100.0, 3, 90.0, False)
    assert f.cwnd == 20.0
    cc.on_loss(f, 101.0, 3, 95.0, False)  # same recovery period
    assert f.cwnd == 20.0
    for _ in range(20):  # one RTT of acks of packets sent after recovery
        cc.on_ack(f, 200.0, 1, (0, 150.0))
    assert f.cwnd == pytest.approx(21.0, abs=0.05)
    cc.on_loss(f, 300.0, 1, 250.0, True)  # persistent congestion
    assert f.cwnd == 2.0


@pytest.mark.parametrize("scheme", ["bbr", "copa", "vegas"])
def test_delay_based_and_bbr_reach_capacity_on_deep_buffer(scheme: str) -> None:
    sc = PANTHEON["buffer_bdp"]
    _, f = _run(sc, make_controller(scheme, 0), 8000)
    rx = np.asarray(f.rx_times)
    tput = (rx > 4000).sum() * 1500 / 4000  # bytes/ms over the last 4 s
    assert tput > 0.85 * 1504


def test_copa_standing_queue_is_about_one_over_delta() -> None:
    sc = Scenario("copa", Trace("constant", rate_mbps=12), None, 20)
    _, f = _run(sc, Copa(delta=0.1), 10_000, ack_every=1)
    owd = np.asarray(f.owds)[-2000:]
    queued_pkts = (owd.mean() - 20.0) * 1504 / 1500
    assert 0.4 / 0.1 < queued_pkts < 2.5 / 0.1  # order 1/delta packets


def test_bbr_probe_rtt_dip_every_10s() -> None:
    sc = Scenario("bbr", Trace("constant", rate_mbps=12), None, 20, up_queue_packets=200)
    net = build_network(sc, 0)
    cc = BBR()
    f = net.add_flow(cc)
    starts, after = [], []
    prev = False
    for t in range(0, 40_000, 5):
        net.run_until(t)
        low = t > 2000 and f.cwnd <= 4.0
        if low and not prev:
            starts.append(t)
        if prev and not low:
            after.append(cc.rtprop)
        prev = low
    # PROBE_RTT whenever the min RTT has not been refreshed for 10 s (plus the 200 ms dwell)
    assert len(starts) >= 2
    gaps = np.diff(starts)
    assert np.all((gaps > 10_000) & (gaps < 12_500))
    # the dip drains the queue, so RTprop is re-measured near the base RTT (40 ms + serialisation)
    assert all(40.0 <= r < 46.0 for r in after)
    assert cc.btlbw * 1500 == pytest.approx(1504, rel=0.05)  # BtlBw = link rate


def test_make_controller_errors() -> None:
    with pytest.raises(ConfigError, match="valid: newreno"):
        make_controller("reno2")
    assert isinstance(make_controller("fixed:12"), FixedCwnd)
    assert isinstance(make_controller("vegas"), Vegas)
    with pytest.raises(ConfigError, match="fixed:N"):
        make_controller("fixed:abc")
