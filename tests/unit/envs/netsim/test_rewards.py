"""Reward options against hand computations, and the same rewards from both engines."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlfleet.envs.netsim.env import NetSimEnv
from rlfleet.envs.netsim.features import reward, summarise
from rlfleet.envs.netsim.privileged import N_PRIVILEGED
from rlfleet.envs.netsim.rewards import RewardSpec, RunningRewardNorm, path_key, window_rewards
from rlfleet.envs.netsim.vector import NetSimVectorEnv
from rlfleet.errors import ConfigError

pytestmark = pytest.mark.unit


def _window() -> np.ndarray:
    # two normalised mvfst-rl states (ms / 100, bytes / 1000, throughput bytes/s / 1000)
    s = np.zeros((2, 20))
    s[:, 0] = [0.50, 0.50]  # min RTT 50 ms
    s[:, 2] = [0.60, 0.80]  # latest RTT 60, 80 ms -> mean 70 ms
    s[:, 3] = [0.60, 0.70]  # srtt 60, 70 ms -> mean 65 ms
    s[:, 5] = [0.10, 0.30]  # queueing delay 10, 30 ms -> max 30 ms
    s[:, 16] = [12.52, 25.04]  # acked KB: 37.56 in all
    s[:, 17] = [1000.0, 3000.0]  # 1, 3 MB/s -> mean 2 MB/s
    s[:, 18] = [0.0, 12.52]  # lost KB: 12.52 -> loss rate 0.25
    return s


CAP_MBPS, RTT_MS = 32.0, 100.0  # capacity 4 MB/s


def _r(**kw) -> float:
    spec = RewardSpec(**kw)
    return float(window_rewards(summarise(_window())[None], spec, [CAP_MBPS], [RTT_MS])[0])


def test_rewards_match_hand_computations() -> None:
    thr, d, lat, p, lost_mb = 2.0, 30.0, 70.0, 0.25, 0.01252
    assert _r() == pytest.approx(math.log(1e-5 + thr) - 0.2 * math.log(1e-5 + d))
    assert _r() == pytest.approx(reward(_window()))  # the engines' own mvfst-rl reward
    assert _r(kind="linear", coeffs=(1.0, 0.2, 3.0)) == pytest.approx(thr - 0.2 * d - 3 * lost_mb)
    assert _r(kind="linear", max_delay=False) == pytest.approx(thr - 0.2 * 20.0)
    assert _r(loss_penalty=4.0) == pytest.approx(_r() - 4.0 * p)
    # capacity normalisation: utilisation 0.5, delay in base RTTs 0.3
    assert _r(norm="capacity") == pytest.approx(math.log(1e-5 + 0.5) - 0.2 * math.log(1e-5 + 0.3))
    pps = thr * 1e6 / 1252
    assert _r(kind="aurora") == pytest.approx(1e-3 * (10 * pps - 1000 * lat / 1000 - 2000 * p))
    assert _r(kind="aurora", norm="capacity") == pytest.approx(
        1e-3 * (10 * 0.5 - 1000 * 0.7 - 2000 * p)
    )
    lost_rate = thr * p / (1 - p)
    assert _r(kind="orca") == pytest.approx((thr - 5 * lost_rate) / 4.0 * min(1, 1.25 * 50 / 65))
    # an empty window is worth 0 whatever the kind
    empty = window_rewards(np.zeros((1, 100)), RewardSpec(kind="orca"), [CAP_MBPS], [RTT_MS])
    assert empty[0] == 0.0
    for bad in ({"kind": "pcc"}, {"norm": "z"}, {"loss_penalty": -1.0}, {"norm_coeff": 0.0}):
        with pytest.raises(ConfigError):
            RewardSpec(**bad)


def test_running_norm_is_per_path() -> None:
    norm = RunningRewardNorm(coeff=0.01)
    rng = np.random.default_rng(0)
    keys = ["slow"] * 64 + ["fast"] * 64
    for _ in range(200):
        x = np.concatenate([rng.normal(-5, 0.1, 64), rng.normal(100, 10, 64)])
        out = norm(keys, x)
    assert abs(out[:64].mean()) < 0.5 and abs(out[64:].mean()) < 0.5
    assert 0.5 < out[:64].std() < 2 and 0.5 < out[64:].std() < 2
    assert path_key("random_traces_0_5:nepal_to_aws_india:d5:x1:l0:q9", ("sampled",)) == (
        "nepal_to_aws_india"
    )


@pytest.mark.parametrize(
    "kw",
    [
        {"reward_kind": "aurora"},
        {"reward_kind": "orca", "privileged": True},
        {"reward_norm": "capacity", "loss_penalty": 2.0},
    ],
)
def test_both_engines_emit_the_same_rewards_and_privileged_inputs(kw) -> None:
    names = ["nepal_to_aws_india", "aws_korea_to_china", "buffer_bdp"]
    v = NetSimVectorEnv(3, scenario=names, duration_s=1.5, **kw)
    obs_v, _ = v.reset(seed=0)
    envs = [NetSimEnv(n, duration_s=1.5, **kw) for n in names]
    obs_e = [e.reset(seed=i)[0] for i, e in enumerate(envs)]
    np.testing.assert_array_equal(obs_v, np.stack(obs_e))
    for k in range(12):
        a = np.array([3, 4, 3]) if k < 6 else np.array([1, 0, 2])
        obs_v, rew_v, _, trunc, _ = v.step(a)
        for i, e in enumerate(envs):
            o, r, _, t, _ = e.step(int(a[i]))
            np.testing.assert_array_equal(obs_v[i], o)
            assert rew_v[i] == pytest.approx(r, rel=1e-6, abs=1e-9)
    if kw.get("privileged"):
        assert obs_v.shape[1] == 220 + N_PRIVILEGED
        assert obs_v[0, -N_PRIVILEGED:][2] == pytest.approx(0.56)  # Nepal: base RTT 56 ms
