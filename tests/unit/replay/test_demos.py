"""Demonstration file format: round trip, validation messages, atomic write, transitions, recording."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rlfleet.envs.record import record_episodes
from rlfleet.errors import ConfigError, ReplayError
from rlfleet.replay.demos import (
    DEMO_FORMAT_VERSION,
    Demonstrations,
    load_demos,
    make_demonstrations,
    write_demos,
)
from rlfleet.replay.nstep import NStepAccumulator


def angle_policy(obs: np.ndarray) -> int:
    """Weak scripted CartPole policy: fails within ~10-60 steps, so episodes TERMINATE."""
    return int(obs[2] > 0)


def good_policy(obs: np.ndarray) -> int:
    """Strong scripted CartPole policy: balances, so a time limit TRUNCATES its episodes."""
    return int(obs[2] + 0.5 * obs[3] > 0)


@pytest.fixture(scope="module")
def mixed_demos() -> Demonstrations:
    """Terminated episodes followed by truncated ones (time limit 15)."""
    term = record_episodes("CartPole-v1", angle_policy, 3, seed=10, source="script:t:angle")
    trunc = record_episodes(
        "CartPole-v1", good_policy, 2, seed=20, max_episode_steps=15, source="script:t:good"
    )
    assert term.terminated.any() and not term.truncated.any()
    assert trunc.truncated.any() and not trunc.terminated.any()
    return make_demonstrations(
        env_id="CartPole-v1",
        observation_space=term.meta["observation_space"],
        num_actions=2,
        obs=np.concatenate([term.obs, trunc.obs]),
        action=np.concatenate([term.action, trunc.action]),
        reward=np.concatenate([term.reward, trunc.reward]),
        terminated=np.concatenate([term.terminated, trunc.terminated]),
        truncated=np.concatenate([term.truncated, trunc.truncated]),
        episode_id=np.concatenate([term.episode_id, trunc.episode_id + 3]),
        final_obs=np.concatenate([term.final_obs, trunc.final_obs]),
        episode_seeds=term.episode_seeds + trunc.episode_seeds,
        source="script:tests:mixed",
    )


# --------------------------------------------------------------------------- round trip


def test_round_trip_keeps_every_array_and_the_metadata(tmp_path: Path, mixed_demos) -> None:
    path = write_demos(tmp_path / "d.npz", mixed_demos)
    back = load_demos(
        path,
        expect_env_id="CartPole-v1",
        expect_obs_shape=(4,),
        expect_obs_dtype=np.float32,
        expect_num_actions=2,
    )
    for name in ("obs", "action", "reward", "terminated", "truncated", "episode_id", "final_obs"):
        np.testing.assert_array_equal(getattr(back, name), getattr(mixed_demos, name), name)
        assert getattr(back, name).dtype == getattr(mixed_demos, name).dtype, name
    assert back.meta == mixed_demos.meta
    assert back.meta["format_version"] == DEMO_FORMAT_VERSION
    assert back.num_episodes == 5
    assert back.episode_seeds == [10, 11, 12, 20, 21]
    assert back.source == "script:tests:mixed"
    assert back.meta["observation_space"]["low_min"] == "-inf"  # strict JSON for inf bounds
    np.testing.assert_array_equal(back.episode_lengths, np.bincount(mixed_demos.episode_id))


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"expect_env_id": "MountainCar-v0"},
            "env_id: expected 'MountainCar-v0', found 'CartPole-v1'",
        ),
        ({"expect_obs_shape": (2,)}, "obs_shape: expected (2,), found (4,)"),
        ({"expect_obs_dtype": np.uint8}, "obs_dtype: expected uint8, found float32"),
        ({"expect_num_actions": 3}, "num_actions: expected 3, found 2"),
    ],
)
def test_mismatch_names_expected_and_found(tmp_path: Path, mixed_demos, kwargs, expected) -> None:
    path = write_demos(tmp_path / "d.npz", mixed_demos)
    with pytest.raises(ConfigError) as info:
        load_demos(path, **kwargs)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_all_mismatches_reported_at_once(tmp_path: Path, mixed_demos) -> None:
    path = write_demos(tmp_path / "d.npz", mixed_demos)
    with pytest.raises(ConfigError) as info:
        load_demos(path, "Acrobot-v1", (6,), "float64", 3)
    msg = str(info.value)
    for field in ("env_id:", "obs_shape:", "obs_dtype:", "num_actions:"):
        assert field in msg


def _save_raw(path: Path, arrays: dict, meta: dict | None) -> None:
    if meta is not None:
        arrays = {**arrays, "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    np.savez(path, **arrays)


def _raw(demos: Demonstrations) -> dict:
    names = ("obs", "action", "reward", "terminated", "truncated", "episode_id", "final_obs")
    return {k: getattr(demos, k) for k in names}


def test_missing_array_is_named(tmp_path: Path, mixed_demos) -> None:
    arrays = _raw(mixed_demos)
    del arrays["final_obs"]
    _save_raw(tmp_path / "d.npz", arrays, mixed_demos.meta)
    with pytest.raises(ReplayError, match=r"\['final_obs'\] are missing"):
        load_demos(tmp_path / "d.npz")


def test_pickled_object_array_is_rejected(tmp_path: Path, mixed_demos) -> None:
    arrays = _raw(mixed_demos)
    arrays["reward"] = np.array([{"evil": 1}] * mixed_demos.num_steps, dtype=object)
    _save_raw(tmp_path / "d.npz", arrays, mixed_demos.meta)
    with pytest.raises(ReplayError, match="cannot read"):
        load_demos(tmp_path / "d.npz")


def test_newer_format_version_is_rejected(tmp_path: Path, mixed_demos) -> None:
    meta = {**mixed_demos.meta, "format_version": DEMO_FORMAT_VERSION + 1}
    _save_raw(tmp_path / "d.npz", _raw(mixed_demos), meta)
    with pytest.raises(ReplayError, match=f"format_version {DEMO_FORMAT_VERSION + 1}"):
        load_demos(tmp_path / "d.npz")


def test_inconsistent_arrays_are_rejected(tmp_path: Path, mixed_demos) -> None:
    arrays = _raw(mixed_demos)
    arrays["terminated"] = np.zeros_like(arrays["terminated"])
    arrays["truncated"] = np.zeros_like(arrays["truncated"])
    _save_raw(tmp_path / "d.npz", arrays, mixed_demos.meta)
    with pytest.raises(ReplayError, match="do not end with terminated or truncated"):
        load_demos(tmp_path / "d.npz")
    arrays = _raw(mixed_demos)
    arrays["action"] = np.full_like(arrays["action"], 2)
    _save_raw(tmp_path / "d.npz", arrays, mixed_demos.meta)
    with pytest.raises(ReplayError, match=r"action outside \[0, 2\)"):
        load_demos(tmp_path / "d.npz")


@pytest.mark.parametrize("name", ["obs", "final_obs"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_observations_that_are_not_finite_are_rejected_naming_file_and_rows(
    tmp_path: Path, mixed_demos, name, value
) -> None:
    arrays = _raw(mixed_demos)
    arrays[name] = arrays[name].copy()
    arrays[name][1, 2] = value
    _save_raw(tmp_path / "d.npz", arrays, mixed_demos.meta)
    with pytest.raises(ReplayError, match=rf"d\.npz.*{name} holds NaN or infinite .* rows \[1\]"):
        load_demos(tmp_path / "d.npz")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="does not exist"):
        load_demos(tmp_path / "nope.npz")


# --------------------------------------------------------------------------- atomic write


def test_failed_write_leaves_no_partial_file(tmp_path: Path, mixed_demos, monkeypatch) -> None:
    path = tmp_path / "d.npz"
    write_demos(path, mixed_demos)
    before = path.read_bytes()

    def broken_savez(fh, **arrays):
        fh.write(b"PK\x03\x04 partial")  # a half-written archive, then the disk "fills up"
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="No space"):
        write_demos(path, mixed_demos)
    with pytest.raises(OSError, match="No space"):
        write_demos(tmp_path / "new.npz", mixed_demos)
    assert path.read_bytes() == before  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz"]  # no temp, no new.npz


# --------------------------------------------------------------------------- transitions


def naive_transitions(d: Demonstrations, n: int, gamma: float) -> list[tuple]:
    """One item per step, written as the definition reads, with explicit episode scanning."""
    out = []
    for t in range(d.num_steps):
        ret, g, k = 0.0, 1.0, 0
        while True:
            ret += g * float(d.reward[t + k])
            g *= gamma
            end = t + k
            k += 1
            if d.terminated[end] or d.truncated[end] or k == n:
                break
        last_of_episode = d.terminated[end] or d.truncated[end]
        nxt = d.final_obs[d.episode_id[end]] if last_of_episode else d.obs[end + 1]
        disc = 0.0 if d.terminated[end] else g
        out.append((d.obs[t], int(d.action[t]), ret, disc, nxt))
    return out


@pytest.mark.parametrize("n", [1, 3, 5])
def test_transitions_match_naive_loop_and_accumulator(mixed_demos, n) -> None:
    gamma = 0.9
    tr = mixed_demos.transitions(n, gamma)
    naive = naive_transitions(mixed_demos, n, gamma)
    assert len(naive) == mixed_demos.num_steps == len(tr["obs"])
    for t, (obs, action, ret, disc, nxt) in enumerate(naive):
        np.testing.assert_array_equal(tr["obs"][t], obs)
        assert tr["action"][t] == action
        assert tr["reward"][t] == pytest.approx(ret, rel=1e-6)
        assert tr["discount"][t] == pytest.approx(disc, rel=1e-6)
        np.testing.assert_array_equal(tr["next_obs"][t], nxt)
    # At least one item of each kind of episode end is exercised.
    assert (tr["discount"] == 0).any()  # terminated
    if n > 1:  # truncated (and cut) sequences bootstrap with gamma^m, m < n
        assert (tr["discount"] > 1.01 * gamma**n).any()

    # Against the actors' accumulator, fed the same steps one at a time (K = 1): bit-equal.
    acc = NStepAccumulator(1, n, gamma, (4,), np.float32)
    next_obs = mixed_demos.next_obs()
    got: dict[str, list] = {k: [] for k in ("obs", "action", "reward", "discount", "next_obs")}
    for t in range(mixed_demos.num_steps):
        res = acc.step(
            mixed_demos.obs[t : t + 1],
            mixed_demos.action[t : t + 1],
            mixed_demos.reward[t : t + 1],
            mixed_demos.terminated[t : t + 1],
            mixed_demos.truncated[t : t + 1],
            next_obs[t : t + 1],
        )
        for k in got:
            got[k].append(res[k])
    assert acc.pending == 0
    for k in got:
        np.testing.assert_array_equal(np.concatenate(got[k]), tr[k], err_msg=k)


def test_one_step_fields_and_markers(mixed_demos) -> None:
    tr = mixed_demos.transitions(4, 0.99)
    one = mixed_demos.transitions(1, 0.99)
    for k in ("reward", "discount", "next_obs"):
        np.testing.assert_array_equal(tr[f"{k}_1"], one[k])
    assert tr["is_demo"].all() and tr["imitate"].all()
    mask = np.array([False, True, False, True, False])
    tr = mixed_demos.transitions(4, 0.99, imitate_episodes=mask)
    np.testing.assert_array_equal(tr["imitate"], mask[mixed_demos.episode_id])
    with pytest.raises(ReplayError, match=r"shape \(5,\)"):
        mixed_demos.transitions(4, 0.99, imitate_episodes=np.ones(3, bool))
    with pytest.raises(ReplayError, match="n must be"):
        mixed_demos.transitions(0, 0.99)


# --------------------------------------------------------------------------- recording


def test_record_scripted_cartpole_is_reproducible_and_faithful(tmp_path: Path) -> None:
    path = tmp_path / "cp.npz"
    d = record_episodes(
        "CartPole-v1", angle_policy, 4, seed=3, path=path, source="script:tests:angle"
    )
    assert path.is_file()
    assert d.episode_seeds == [3, 4, 5, 6]
    assert d.num_episodes == 4 and d.terminated.sum() == 4
    # Every recorded action is what the policy does in the recorded state.
    np.testing.assert_array_equal(d.action, [angle_policy(o) for o in d.obs])
    np.testing.assert_allclose(d.episode_returns, d.episode_lengths)  # CartPole: +1 per step
    again = load_demos(path)
    np.testing.assert_array_equal(again.obs, d.obs)
    # Same seeds, deterministic policy -> identical episodes.
    d2 = record_episodes("CartPole-v1", angle_policy, 4, seed=3)
    np.testing.assert_array_equal(d2.obs, d.obs)


def test_record_rejects_bad_actions() -> None:
    with pytest.raises(ConfigError, match=r"action 7 in episode 0 step 0; valid: integers 0..1"):
        record_episodes("CartPole-v1", lambda obs: 7, 1, seed=0)
    with pytest.raises(ConfigError, match="episodes must be"):
        record_episodes("CartPole-v1", angle_policy, 0, seed=0)


def test_recording_resets_a_policy_with_memory_before_every_episode():
    """A recurrent checkpoint's policy has reset(); each episode must start from a clean state."""

    class CountingPolicy:
        def __init__(self) -> None:
            self.resets = 0
            self.steps_since_reset: list[int] = []
            self._steps = 0

        def reset(self) -> None:
            self.steps_since_reset.append(self._steps)
            self.resets += 1
            self._steps = 0

        def __call__(self, obs: np.ndarray) -> int:
            self._steps += 1
            return angle_policy(obs)

    policy = CountingPolicy()
    demos = record_episodes("CartPole-v1", policy, 4, seed=3, source="script:t:counting")
    assert policy.resets == 4
    lengths = np.bincount(demos.episode_id).tolist()
    assert policy.steps_since_reset == [0, *lengths[:-1]]  # each reset ends the previous episode
