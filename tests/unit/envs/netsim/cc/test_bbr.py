"""BBR v1 in the engine: capacity on a deep buffer, the PROBE_RTT dip every 10 s."""

from __future__ import annotations

import numpy as np
import pytest

from rlfleet.envs.netsim.cc.bbr import BBR
from rlfleet.envs.netsim.cc.registry import make_controller
from rlfleet.envs.netsim.scenarios import PANTHEON, Scenario, Trace, build_network


def _run(sc: Scenario, cc, ms: float, seed: int = 0, **kw):
    net = build_network(sc, seed)
    f = net.add_flow(cc, **kw)
    net.run_until(ms)
    return net, f


def test_bbr_reaches_capacity_on_deep_buffer() -> None:
    sc = PANTHEON["buffer_bdp"]
    _, f = _run(sc, make_controller("bbr", 0), 8000)
    rx = np.asarray(f.rx_times)
    tput = (rx > 4000).sum() * 1500 / 4000  # bytes/ms over the last 4 s
    assert tput > 0.85 * 1504


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
