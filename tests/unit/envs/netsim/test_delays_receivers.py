"""Action-delay distributions and the mvfst receiver profile."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rlfleet.envs.netsim.delays import parse_action_delay
from rlfleet.envs.netsim.env import NetSimEnv
from rlfleet.envs.netsim.receivers import receiver_profile
from rlfleet.envs.netsim.vector import NetSimVectorEnv
from rlfleet.errors import ConfigError

pytestmark = pytest.mark.unit


def test_delay_specs_parse_and_draw_their_distributions(tmp_path) -> None:
    rng = np.random.default_rng(0)
    assert parse_action_delay(50).fixed == 50.0
    assert parse_action_delay("30").fixed == 30.0
    assert parse_action_delay("fixed:7").sample(rng, 3).tolist() == [7.0, 7.0, 7.0]
    u = parse_action_delay("uniform:5,90").sample(rng, 20_000)
    assert u.min() >= 5 and u.max() <= 90 and np.mean(u) == pytest.approx(47.5, rel=0.02)
    ln = parse_action_delay("lognormal:20,0.5,60")
    x = ln.sample(rng, 20_000)
    assert np.median(x) == pytest.approx(20, rel=0.03) and x.max() == 60.0 and ln.fixed is None
    f = tmp_path / "lat.json"
    f.write_text(json.dumps({"samples_ms": [1.5, 2.5, 4.0]}))
    e = parse_action_delay(f"empirical:{f}")
    assert set(e.sample(rng, 500).tolist()) == {1.5, 2.5, 4.0} and e.max_ms == 4.0
    for bad in ("gauss:1,2", "uniform:9,1", "uniform:1", "lognormal:0,1,5", -1, "empirical:/no"):
        with pytest.raises(ConfigError):
            parse_action_delay(bad)


def test_a_delay_distribution_varies_when_actions_land() -> None:
    env = NetSimEnv("buffer_bdp", duration_s=2.0, action_delay_ms="uniform:0,90")
    env.reset(seed=0)
    landed = []
    for _ in range(8):
        t0 = env._t
        *_, info = env.step(3)
        landed.append(info["action_applied_at_ms"] - t0)
    assert len(set(np.round(landed, 6))) > 3 and 0 <= min(landed) and max(landed) <= 90
    v = NetSimVectorEnv(4, scenario="buffer_bdp", duration_s=2.0, action_delay_ms="uniform:0,250")
    v.reset(seed=0)
    skipped = sum(v.step(np.full(4, 3))[4]["skipped_windows"].sum() for _ in range(10))
    assert skipped > 0  # delays over a window drop windows, as the fixed delay does


def test_mvfst_receiver_profile() -> None:
    p = receiver_profile("mvfst")
    assert p["ack_every"] == 10 and p["ack_timer_srtt"] == 0.25 and p["ack_timer_ms"] == 25.0
    assert p["time_threshold"] == 1.25 and p["initial_rtt_ms"] == 50.0
    assert receiver_profile("pantheon")["ack_every"] == 2
    assert receiver_profile("mvfst", ack_every=4)["ack_every"] == 4
    with pytest.raises(ConfigError, match="valid: pantheon, mvfst"):
        receiver_profile("linux")

    def acks(receiver: str) -> int:
        env = NetSimEnv("india_to_aws_india", duration_s=1.0, receiver=receiver)
        env.reset(seed=0)
        for _ in range(5):
            env.step(4)
        f = env.flow
        assert f.time_threshold == receiver_profile(receiver)["time_threshold"]
        return env.net.flows[0].ack_bytes_recv // 64

    n_pantheon, n_mvfst = acks("pantheon"), acks("mvfst")
    assert n_mvfst < n_pantheon / 3  # ACK every 10 instead of 2
    # the srtt/4 timer: before any RTT sample, 50 ms / 4; later srtt / 4, at most 25 ms
    env = NetSimEnv("india_to_aws_india", duration_s=1.0, receiver="mvfst")
    env.reset(seed=0)
    assert env.flow.rx_ack_timer(0.0) == 12.5
    env.flow.srtt, env.flow.srtt_mark = 400.0, -1.0
    assert env.flow.rx_ack_timer(5.0) == 25.0
