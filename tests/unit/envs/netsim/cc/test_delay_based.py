"""Vegas and Copa in the engine: capacity on a deep buffer, Copa's standing queue."""

from __future__ import annotations

import numpy as np
import pytest

from rlfleet.envs.netsim.cc.delay_based import Copa
from rlfleet.envs.netsim.cc.registry import make_controller
from rlfleet.envs.netsim.scenarios import PANTHEON, Scenario, Trace, build_network


def _run(sc: Scenario, cc, ms: float, seed: int = 0, **kw):
    net = build_network(sc, seed)
    f = net.add_flow(cc, **kw)
    net.run_until(ms)
    return net, f


@pytest.mark.parametrize("scheme", ["copa", "vegas"])
def test_delay_based_reach_capacity_on_deep_buffer(scheme: str) -> None:
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
