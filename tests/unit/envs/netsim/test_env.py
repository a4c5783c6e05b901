"""The Gymnasium env: spaces, registration, synchronous reference, delayed actions, vector env."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

from rlfleet.envs.netsim import ENV_ID, register_netsim_envs
from rlfleet.envs.netsim.cc import External
from rlfleet.envs.netsim.env import NetSimEnv, make_vector_env
from rlfleet.envs.netsim.features import (
    History,
    StateBuilder,
    apply_action,
    parse_actions,
    summarise,
)
from rlfleet.envs.netsim.features import reward as mvfst_reward
from rlfleet.envs.netsim.scenarios import PANTHEON, build_network
from rlfleet.errors import ConfigError

ACTIONS = [4, 4, 3, 0, 1, 4, 2, 3, 3, 0, 4, 1, 0, 2, 4, 4, 3, 1, 0, 0] * 3


def _sync_reference(scenario: str, actions: list[int], duration_ms: float) -> list[np.ndarray]:
    """A hand-written synchronous driver: the simulator waits for every action."""
    sc = PANTHEON[scenario]
    net = build_network(sc, 0)  # lossless scenario: the loss seed plays no part
    f = net.add_flow(External(), mss=1252, init_cwnd=10.0, min_cwnd=2.0, max_cwnd=2000.0)
    f.recorder = []
    sb = StateBuilder(1252)
    hist = History(20, 5, 10 * 1.252)
    table = parse_actions("0,/2,-10,+10,*2")
    t = 0.0
    out = []

    def window() -> bool:
        nonlocal t
        while True:
            t = min(t + 100.0, duration_ms)
            net.run_until(t)
            s = sb.states(f.recorder)
            f.recorder.clear()
            if len(s) or t >= duration_ms:
                obs = np.concatenate([summarise(s), hist.vector()]).astype(np.float32)
                out.append((obs, mvfst_reward(s)))
                return t >= duration_ms

    done = window()
    for a in actions:
        if done:
            break
        f.cwnd = apply_action(f.cwnd, table[a], 2.0, 2000.0)
        hist.push(a, f.cwnd * 1252 / 1000)
        net.kick(f)
        done = window()
    return out


def _rollout(env: NetSimEnv, actions: list[int], seed: int = 0):
    obs, info = env.reset(seed=seed)
    out = [(obs, 0.0, info)]
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        out.append((obs, r, info))
        if term or trunc:
            break
    return out


def test_spaces_and_registration() -> None:
    register_netsim_envs()
    register_netsim_envs()  # idempotent
    env = gymnasium.make(ENV_ID, scenario="buffer_bdp", duration_s=2.0)
    assert env.observation_space.shape == (220,) and env.observation_space.dtype == np.float32
    assert env.action_space.n == 5
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (220,)
    assert info["bdp_packets"] == pytest.approx(PANTHEON["buffer_bdp"].bdp_packets(1252))
    c = NetSimEnv("buffer_bdp", compact=True)
    assert c.observation_space.shape == (5 * 7 + 120,)


def test_delay_zero_reproduces_synchronous_reference_exactly() -> None:
    env = NetSimEnv("buffer_bdp", duration_s=4.0, action_delay_ms=0.0)
    got = _rollout(env, ACTIONS)
    ref = _sync_reference("buffer_bdp", ACTIONS, 4000.0)
    assert len(got) == len(ref)
    for (o, r, _), (ro, rr) in zip(got[1:], ref[1:], strict=True):
        assert np.array_equal(o, ro)
        assert r == rr
    assert np.array_equal(got[0][0], ref[0][0])


def test_delayed_action_lands_late_and_changes_the_trajectory() -> None:
    sync = _rollout(NetSimEnv("buffer_bdp", duration_s=3.0), ACTIONS)
    late = _rollout(NetSimEnv("buffer_bdp", duration_s=3.0, action_delay_ms=40.0), ACTIONS)
    for (_, _, i0), (_, _, i1) in zip(late, late[1:], strict=False):
        assert i1["action_applied_at_ms"] == i0["time_ms"] + 40.0
        assert i1["skipped_windows"] == 0
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(sync, late, strict=False))


def test_observations_while_action_pending_are_dropped() -> None:
    env = NetSimEnv("buffer_bdp", duration_s=3.0, action_delay_ms=150.0)
    out = _rollout(env, [0] * 100)
    times = [i["time_ms"] for _, _, i in out]
    # each action lands 150 ms after its observation, so the window closing at +100 is dropped
    assert all(b - a == 200.0 for a, b in zip(times[1:-1], times[2:-1], strict=False))
    # one dropped window per step, except the last (the action lands at the episode end)
    assert out[-1][2]["skipped_windows"] == len(out) - 2
    assert times[-1] == 3000.0


def test_episode_truncates_at_duration_and_is_deterministic() -> None:
    a = _rollout(NetSimEnv("nepal_to_aws_india", duration_s=5.0), ACTIONS * 2, seed=3)
    b = _rollout(NetSimEnv("nepal_to_aws_india", duration_s=5.0), ACTIONS * 2, seed=3)
    assert a[-1][2]["time_ms"] == 5000.0
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(a, b, strict=True))


def test_samplers_give_new_scenarios_and_bad_input_is_rejected() -> None:
    env = NetSimEnv("random_traces_0_5", duration_s=0.5)
    names = {env.reset(seed=s)[1]["scenario"] for s in range(4)}
    assert len(names) == 4
    with pytest.raises(ConfigError, match="unknown scenario"):
        NetSimEnv("nowhere")
    env.reset(seed=0)
    with pytest.raises(ConfigError, match=r"valid: 0\.\.4"):
        env.step(7)


def test_vector_env_steps_all_envs() -> None:
    venv = make_vector_env(3, scenario="policer_12mbps_20ms", duration_s=1.0)
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (3, 220) and obs.dtype == np.float32
    for _ in range(12):  # runs past the 10-step episode: autoreset
        obs, r, term, trunc, _ = venv.step(np.array([4, 3, 0]))
    assert obs.shape == (3, 220) and r.shape == (3,)
    venv.close()


def test_competing_flow_shares_the_link() -> None:
    env = NetSimEnv("buffer_bdp", duration_s=2.0, competing=["cubic"])
    _rollout(env, [3] * 30)
    assert len(env.net.flows) == 2 and env.net.flows[1].rx_times


def test_run_policy_resets_a_policy_with_memory_before_its_episode() -> None:
    """A recurrent checkpoint's policy (rlfleet netsim eval checkpoint:...) starts afresh."""
    from rlfleet.envs.netsim.evaluate import run_policy

    calls: list[str] = []

    class Remembering:
        def reset(self) -> None:
            calls.append("reset")

        def __call__(self, obs: np.ndarray) -> int:
            calls.append("act")
            return 0

    sc = next(iter(PANTHEON.values()))
    metrics = run_policy(sc, Remembering(), duration_s=1.0, seed=0)
    assert calls[0] == "reset" and calls.count("reset") == 1 and calls.count("act") > 1
    assert "episode_return" in metrics
