"""The random_traces_* samplers against mvfst-rl's job files (config/jobs/random_traces_*.yaml):
log-uniform draws with the stated medians, the choice weights, always-scaled 3_5 traces, loss
with probability 0.2 in _narrow, and no path the RL flow's 2000-packet cwnd cannot fill."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlfleet.envs.netsim.scenarios.samplers import (
    MAX_BDP_BYTES,
    SAMPLER_PARAMS,
    bdp_bytes,
    draw,
    sample_scenario,
    uniform_log,
)
from rlfleet.errors import ConfigError

pytestmark = pytest.mark.unit

N = 20_000


def _naive_cdf(x: float, lo: float, hi: float, med: float) -> float:
    # the reference samples u ~ U[log(lo + o), log(hi + o)] and returns exp(u) - o
    o = (med**2 - lo * hi) / (lo + hi - 2 * med)
    return (math.log(x + o) - math.log(lo + o)) / (math.log(hi + o) - math.log(lo + o))


@pytest.mark.parametrize("lo,hi,med", [(5, 200, 70), (0.5, 2.0, 1.0), (1e-4, 0.02, 0.005)])
def test_uniform_log_matches_the_reference_distribution(lo, hi, med) -> None:
    rng = np.random.default_rng(0)
    x = np.sort([uniform_log(rng, lo, hi, med) for _ in range(N)])
    assert lo <= x[0] and x[-1] <= hi
    assert np.median(x) == pytest.approx(med, rel=0.03)
    ecdf = np.arange(1, N + 1) / N
    ks = max(abs(ecdf[i] - _naive_cdf(x[i], lo, hi, med)) for i in range(0, N, 7))
    assert ks < 0.015  # Kolmogorov-Smirnov distance; 1.63/sqrt(N) = 0.0115 at p = 0.01


def test_uniform_log_rejects_a_median_above_the_mean() -> None:
    with pytest.raises(ConfigError, match="low < median"):
        uniform_log(np.random.default_rng(0), 10, 20, 16)


# sampler -> (delay median, queue median, P(scale == 1), P(loss > 0), loss median)
REFERENCE = {
    "random_traces_0_5": (70, 100, 0.1, 0.2, 0.02),
    "random_traces_0_5_narrow": (50, 100, 0.25, 0.2, 0.02),
    "random_traces_3_5": (40, 300, 0.0, 0.0, None),
    "random_traces_3_5_with_loss": (40, 300, 0.0, 0.5, 0.005),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_raw_draws_follow_the_job_files(name) -> None:
    p = SAMPLER_PARAMS[name]
    rng = np.random.default_rng(1)
    ds = [draw(p, rng) for _ in range(N)]
    d_med, q_med, p1, pl, l_med = REFERENCE[name]
    delay = np.array([d["delay_ms"] for d in ds])
    queue = np.array([d["queue"] for d in ds])
    scale = np.array([d["scale"] for d in ds])
    loss = np.array([d["loss"] for d in ds])
    assert np.median(delay) == pytest.approx(d_med, rel=0.03)
    assert np.median(queue) == pytest.approx(q_med, rel=0.03)
    assert p.delay[0] <= delay.min() and delay.max() <= p.delay[1]
    assert np.mean(scale == 1.0) == pytest.approx(p1, abs=0.01)
    assert p.scale[0] <= scale.min() and scale.max() <= p.scale[1]
    if name.startswith("random_traces_3_5"):
        # the reference always scales the 3_5 traces, log-uniformly in [0.5, 2] around 1
        assert np.median(scale) == pytest.approx(1.0, rel=0.03) and scale.min() < 0.55
    assert np.mean(loss > 0) == pytest.approx(pl, abs=0.01)
    if l_med is not None:
        assert np.median(loss[loss > 0]) == pytest.approx(l_med, rel=0.05)
    traces = {d["trace"] for d in ds}
    assert traces == set(p.traces)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_sampled_scenarios_are_fillable(name) -> None:
    rng = np.random.default_rng(2)
    raw = [draw(SAMPLER_PARAMS[name], rng) for _ in range(2000)]
    unfillable = np.mean(
        [bdp_bytes(d["trace"], d["scale"], d["delay_ms"]) > MAX_BDP_BYTES for d in raw]
    )
    assert unfillable > 0.05  # the reference does draw such paths ...
    for _ in range(300):  # ... the samplers redraw them
        sc = sample_scenario(name, rng)
        assert sc.bdp_packets(1252) * 1252 <= MAX_BDP_BYTES * 1.01
        assert sc.loss_up == 0 or SAMPLER_PARAMS[name].loss[0] <= sc.loss_up
