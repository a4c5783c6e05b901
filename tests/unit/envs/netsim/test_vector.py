"""NetSimVectorEnv (compiled engine): spaces, autoreset, metrics, errors."""

from __future__ import annotations

import numpy as np
import pytest

from rlfleet.envs.netsim.scenarios import Scenario, Trace
from rlfleet.envs.netsim.vector import NetSimVectorEnv
from rlfleet.errors import ConfigError


def test_spaces_autoreset_and_info() -> None:
    v = NetSimVectorEnv(
        3, scenario=["buffer_bdp", "nepal_to_aws_india", "random_traces_0_5"], duration_s=0.5
    )
    assert v.single_observation_space.shape == (220,) and v.single_action_space.n == 5
    obs, info = v.reset(seed=0)
    assert obs.shape == (3, 220) and obs.dtype == np.float32
    assert info["bdp_packets"][0] == pytest.approx(
        Scenario("x", Trace("constant", rate_mbps=12), None, 30).bdp_packets(1252)
    )
    saw_trunc = np.zeros(3, dtype=bool)
    for _ in range(12):
        prev_trunc = v._needs_reset.copy()
        obs, rew, term, trunc, info = v.step(np.array([3, 3, 3]))
        # NEXT_STEP autoreset: the step after truncation starts a new episode, reward 0
        assert np.all(rew[prev_trunc] == 0.0)
        assert np.all(info["time_ms"][prev_trunc] <= 500.0)
        saw_trunc |= trunc
        assert not term.any()
    assert saw_trunc.all()
    with pytest.raises(ConfigError, match=r"valid: 0\.\.4"):
        v.step(np.array([0, 5, 0]))


def test_episode_metrics_p95_matches_naive_nearest_rank() -> None:
    v = NetSimVectorEnv(1, scenario="buffer_bdp_div_2", duration_s=2.0, init_cwnd=80)
    v.reset(seed=0)
    for _ in range(25):
        v.step(np.array([0]))
    h = v.owd[0]
    samples = np.repeat(np.arange(len(h)), h)
    m = v.episode_metrics(0)
    assert m["delay_p95_ms"] == np.percentile(samples, 95, method="nearest")
    assert m["delay_mean_ms"] == pytest.approx(samples.mean())
    assert m["delivered_packets"] == len(samples)


def test_bad_configuration_is_rejected() -> None:
    with pytest.raises(ConfigError, match="num_envs"):
        NetSimVectorEnv(0)
    with pytest.raises(ConfigError, match="whole number of ms"):
        NetSimVectorEnv(1, action_delay_ms=2.5)
    with pytest.raises(ConfigError, match="unknown scenario"):
        NetSimVectorEnv(1, scenario="atlantis")
    v = NetSimVectorEnv(1, scenario=Scenario("frac", Trace("constant", rate_mbps=12), None, 2.5))
    with pytest.raises(ConfigError, match="integer delay_ms"):
        v.reset(seed=0)
