"""NStepAccumulator against a deliberately naive per-environment reference."""

from __future__ import annotations

import numpy as np
import pytest

from rlfleet.errors import ReplayError
from rlfleet.replay.nstep import NStepAccumulator


def naive_nstep(episode_steps, n, gamma):
    """Per-env reference: from one env's full list of steps build every n-step transition.

    ``episode_steps`` is a list of (obs, action, reward, terminated, truncated, next_obs) tuples in
    time order. Each step t starts a transition that runs until n steps passed or the episode
    ended, whichever first.
    """
    out = []
    for t in range(len(episode_steps)):
        ret = 0.0
        m = 0
        terminal = False
        last_next = None
        for j in range(t, len(episode_steps)):
            _, _, r, term, trunc, nxt = episode_steps[j]
            ret += (gamma**m) * r
            m += 1
            last_next = nxt
            if term:
                terminal = True
            if term or trunc or m == n:
                break
        else:
            continue  # stream ended before the sequence completed: still pending
        obs, act = episode_steps[t][0], episode_steps[t][1]
        # A sequence starting after an episode end in the same list belongs to the next episode;
        # only sequences that do not cross an end are valid, which the break above guarantees.
        discount = 0.0 if terminal else gamma**m
        out.append((obs, act, ret, discount, last_next))
    return out


def random_run(rng, num_envs, steps, obs_shape, p_term, p_trunc):
    """Random per-step batches; each env's episode ends with the given probabilities."""
    batches = []
    for _ in range(steps):
        obs = rng.normal(size=(num_envs, *obs_shape)).astype(np.float32)
        nxt = rng.normal(size=(num_envs, *obs_shape)).astype(np.float32)
        act = rng.integers(0, 5, size=num_envs)
        rew = rng.normal(size=num_envs).astype(np.float32)
        term = rng.random(num_envs) < p_term
        trunc = rng.random(num_envs) < p_trunc
        batches.append((obs, act, rew, term, trunc, nxt))
    return batches


def collect(acc, batches):
    outs = [acc.step(*b) for b in batches]
    return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


@pytest.mark.parametrize("n", [1, 3, 5])
@pytest.mark.parametrize("num_envs", [1, 4, 7])
def test_matches_naive_reference(n, num_envs):
    rng = np.random.default_rng(1000 * n + num_envs)
    gamma = 0.9
    obs_shape = (3,)
    batches = random_run(rng, num_envs, 200, obs_shape, p_term=0.08, p_trunc=0.05)
    acc = NStepAccumulator(num_envs, n, gamma, obs_shape, np.float32)
    got = collect(acc, batches)

    expected_count = 0
    for e in range(num_envs):
        steps = [tuple(np.asarray(x)[e] for x in b) for b in batches]
        # Split the env's stream into episodes so no reference sequence crosses an end.
        episodes, cur = [], []
        for s in steps:
            cur.append(s)
            if s[3] or s[4]:
                episodes.append(cur)
                cur = []
        episodes.append(cur)
        ref = [tr for ep in episodes for tr in naive_nstep(ep, n, gamma)]
        mine = got["env_index"] == e
        assert mine.sum() == len(ref), f"env {e}: {mine.sum()} transitions, reference {len(ref)}"
        for col, key in enumerate(("obs", "action", "reward", "discount", "next_obs")):
            want = np.array([tr[col] for tr in ref]).reshape(got[key][mine].shape)
            np.testing.assert_allclose(got[key][mine], want, rtol=1e-5, atol=1e-6, err_msg=key)
        expected_count += len(ref)
    assert len(got["reward"]) == expected_count
    # Every step opens one sequence per env; whatever was not emitted is still pending.
    assert acc.pending == 200 * num_envs - expected_count


def test_dtypes_and_empty_output():
    acc = NStepAccumulator(2, 3, 0.99, (2, 2), np.uint8)
    obs = np.ones((2, 2, 2), np.uint8)
    out = acc.step(
        obs, np.array([1, 2]), np.array([1.0, 2.0]), np.zeros(2, bool), np.zeros(2, bool), obs
    )
    assert set(out) == {"obs", "action", "reward", "discount", "next_obs", "env_index"}
    for v in out.values():
        assert len(v) == 0
    assert out["obs"].shape == (0, 2, 2) and out["obs"].dtype == np.uint8
    assert out["reward"].dtype == np.float32 and out["discount"].dtype == np.float32
    assert out["action"].dtype == np.int64 and out["env_index"].dtype == np.int64
    assert acc.pending == 2


def test_short_episode_terminated_and_truncated():
    """An episode of 2 steps with n = 5: both sequences flushed with m = 2 and m = 1."""
    g = 0.5
    acc = NStepAccumulator(2, 5, g, (1,), np.float32)
    o = lambda v: np.array([[v], [v + 100]], np.float32)  # noqa: E731
    f = np.zeros(2, bool)
    out = acc.step(o(0), np.array([0, 0]), np.array([1.0, 1.0]), f, f, o(1))
    assert len(out["reward"]) == 0
    # Env 0 terminates, env 1 is truncated at the second step.
    out = acc.step(
        o(1),
        np.array([1, 1]),
        np.array([2.0, 2.0]),
        np.array([True, False]),
        np.array([False, True]),
        o(2),
    )
    assert out["env_index"].tolist() == [0, 0, 1, 1]
    np.testing.assert_allclose(out["reward"], [1 + g * 2, 2, 1 + g * 2, 2])
    np.testing.assert_allclose(out["discount"], [0, 0, g**2, g])
    np.testing.assert_allclose(out["obs"][:, 0], [0, 1, 100, 101])
    np.testing.assert_allclose(out["next_obs"][:, 0], [2, 2, 102, 102])
    assert out["action"].tolist() == [0, 1, 0, 1]
    assert acc.pending == 0


def test_reset_drops_pending():
    acc = NStepAccumulator(3, 3, 0.9, (), np.float32)
    z = np.zeros(3, np.float32)
    f = np.zeros(3, bool)
    acc.step(z, np.zeros(3, np.int64), z, f, f, z)
    acc.step(z, np.zeros(3, np.int64), z, f, f, z)
    assert acc.pending == 6
    acc.reset()
    assert acc.pending == 0
    out = acc.step(z, np.zeros(3, np.int64), z, f, f, z)
    assert len(out["reward"]) == 0 and acc.pending == 3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_envs=0, n=3, gamma=0.9), "num_envs"),
        (dict(num_envs=2, n=0, gamma=0.9), "n must"),
        (dict(num_envs=2, n=3, gamma=1.5), "gamma"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ReplayError, match=match):
        NStepAccumulator(obs_shape=(2,), obs_dtype=np.float32, **kwargs)


def test_bad_shape_records_nothing():
    acc = NStepAccumulator(2, 3, 0.9, (4,), np.float32)
    good = np.zeros((2, 4), np.float32)
    f = np.zeros(2, bool)
    with pytest.raises(ReplayError, match=r"obs must have shape \(2, 4\)"):
        acc.step(np.zeros((3, 4)), np.zeros(2), np.zeros(2), f, f, good)
    with pytest.raises(ReplayError, match="reward must be finite"):
        acc.step(good, np.zeros(2), np.array([0.0, np.nan]), f, f, good)
    assert acc.pending == 0


@pytest.mark.parametrize("n", [1, 4])
def test_one_step_fields_match_naive_one_step_reference(n):
    """With one_step=True every n-step transition also carries the 1-step target of its first
    step: r_t, gamma (0 if that step terminated; truncation keeps it) and s_{t+1}."""
    rng = np.random.default_rng(7 + n)
    gamma, num_envs, obs_shape = 0.95, 3, (2,)
    batches = random_run(rng, num_envs, 150, obs_shape, p_term=0.1, p_trunc=0.06)
    got = collect(
        NStepAccumulator(num_envs, n, gamma, obs_shape, np.float32, one_step=True), batches
    )
    plain = collect(NStepAccumulator(num_envs, n, gamma, obs_shape, np.float32), batches)
    for key in plain:  # the n-step part is unchanged by the option
        np.testing.assert_array_equal(got[key], plain[key], err_msg=key)
    for e in range(num_envs):
        steps = [tuple(np.asarray(x)[e] for x in b) for b in batches]
        episodes, cur = [], []
        for s in steps:
            cur.append(s)
            if s[3] or s[4]:
                episodes.append(cur)
                cur = []
        episodes.append(cur)
        ref = []
        for ep in episodes:
            completed = len(naive_nstep(ep, n, gamma))  # n-step sequences emitted so far
            ref += naive_nstep(ep, 1, gamma)[:completed]
        mine = got["env_index"] == e
        assert mine.sum() == len(ref)
        for col, key in ((2, "reward_1"), (3, "discount_1"), (4, "next_obs_1")):
            want = np.array([tr[col] for tr in ref]).reshape(got[key][mine].shape)
            np.testing.assert_allclose(got[key][mine], want, rtol=1e-6, err_msg=key)
    assert got["reward_1"].dtype == np.float32 and got["next_obs_1"].dtype == np.float32


def test_box_actions_travel_with_their_transition():
    """Ape-X DPG: a [K, D] float action per step comes out with the transition it started."""
    acc = NStepAccumulator(2, 2, 0.9, (3,), np.float32, action_shape=(2,), action_dtype=np.float32)
    obs = np.zeros((2, 3), np.float32)
    actions = [np.array([[0.1, -0.2], [1.5, 2.0]], np.float32), np.full((2, 2), 7.0, np.float32)]
    no = np.zeros(2, bool)
    assert len(acc.step(obs, actions[0], np.ones(2), no, no, obs)["action"]) == 0
    out = acc.step(obs, actions[1], np.ones(2), np.array([True, False]), no, obs)
    assert out["action"].dtype == np.float32 and out["action"].shape[1:] == (2,)
    # env 0 terminated: both of its sequences end; env 1: its first one is n steps long
    np.testing.assert_array_equal(out["action"][0], actions[0][0])
    np.testing.assert_array_equal(out["action"][1], actions[1][0])
    np.testing.assert_array_equal(out["action"][2], actions[0][1])
    with pytest.raises(ReplayError, match="action"):
        acc.step(obs, np.zeros(2, np.float32), np.ones(2), no, no, obs)
