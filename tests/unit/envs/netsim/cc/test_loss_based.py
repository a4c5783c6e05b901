"""NewReno and CUBIC closed forms, on a stand-in flow (no engine)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from rlfleet.envs.netsim.cc.loss_based import Cubic, NewReno


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
