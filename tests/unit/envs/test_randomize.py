"""Domain randomization: draws stay in their ranges (uniform and log-uniform), are reproducible
under a seed, reach the physics and ``info``, and the vectorised CartPole plays the same
randomized episodes as the Gymnasium env with the wrapper."""

from __future__ import annotations

import numpy as np
import pytest

from rlfleet.envs import make_env, make_vector_env
from rlfleet.envs.randomize import DomainRandomization, Randomizer, parse_randomization
from rlfleet.errors import ConfigError, EnvError

CARTPOLE = {"length": [0.25, 1.0], "masspole": [0.05, 0.5, "log"], "force_mag": 12.0}


def test_draws_stay_in_range_and_log_uniform_is_uniform_in_log_space():
    ranges = parse_randomization("CartPole-v1", CARTPOLE)
    assert [r.name for r in ranges] == ["force_mag", "length", "masspole"]
    r = Randomizer(ranges, seed=3)
    draws = [r.draw() for _ in range(4000)]
    length = np.array([d["length"] for d in draws])
    mass = np.array([d["masspole"] for d in draws])
    assert length.min() >= 0.25 and length.max() <= 1.0
    assert mass.min() >= 0.05 and mass.max() <= 0.5
    assert {d["force_mag"] for d in draws} == {12.0}
    # uniform: the mean is the midpoint; log-uniform: the median is the geometric mean
    assert length.mean() == pytest.approx(0.625, abs=0.01)
    assert np.median(mass) == pytest.approx(np.sqrt(0.05 * 0.5), rel=0.05)
    again = Randomizer(ranges, seed=3)
    assert [again.draw() for _ in range(4000)] == draws
    assert Randomizer(ranges, seed=4).draw() != draws[0]


def test_the_wrapper_sets_the_physics_and_reports_the_values_in_info():
    env = make_env("Pendulum-v1", randomize={"mass": [0.5, 2.0], "gravity": [8.0, 12.0]})
    assert isinstance(env, DomainRandomization)
    _, info = env.reset(seed=7)
    values = info["randomization"]
    assert env.unwrapped.m == values["mass"] and env.unwrapped.g == values["gravity"]
    assert 0.5 <= values["mass"] <= 2.0 and env.unwrapped.l == 1.0
    *_, step_info = env.step(np.zeros(1, np.float32))
    assert step_info["randomization"] == values
    _, second = env.reset()
    assert second["randomization"] != values, "a new episode draws new values"
    _, replay = env.reset(seed=7)
    assert replay["randomization"] == values, "reproducible under the reset seed"
    env.close()


def test_cartpole_derived_quantities_follow_the_drawn_values():
    env = make_env("CartPole-v1", randomize={"masspole": [0.2, 0.3], "length": [0.8, 0.9]})
    env.reset(seed=0)
    cp = env.unwrapped
    assert cp.total_mass == cp.masspole + cp.masscart
    assert cp.polemass_length == cp.masspole * cp.length
    env.close()


def test_vector_cartpole_plays_the_same_randomized_episodes_as_gymnasium():
    k, steps = 3, 300
    fast = make_vector_env("CartPole-v1", k, seed=11, randomize=CARTPOLE)
    slow = [make_env("CartPole-v1", randomize=CARTPOLE) for _ in range(k)]
    obs = fast.reset()
    ref = np.stack([env.reset(seed=11 + i)[0] for i, env in enumerate(slow)])
    np.testing.assert_array_equal(obs, ref)
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(steps):
        actions = rng.integers(0, 2, k)
        res = fast.step(actions)
        for i, env in enumerate(slow):
            o, r, term, trunc, info = env.step(int(actions[i]))
            assert term == res.terminated[i] and trunc == res.truncated[i]
            np.testing.assert_array_equal(o, res.next_obs[i])
            assert fast.parameters["length"][i] == info["randomization"]["length"] or term or trunc
            if term or trunc:
                ended += 1
                o, info = env.reset()
                assert fast.parameters["length"][i] == info["randomization"]["length"]
                np.testing.assert_array_equal(o, res.obs[i])
    assert ended > 10, "episodes ended and re-drew their parameters"


def test_without_randomization_the_fast_path_is_unchanged():
    plain = make_vector_env("CartPole-v1", 2, seed=0)
    assert plain.randomize == () and plain.parameters["length"] == 0.5


@pytest.mark.parametrize(
    ("env_id", "table", "error", "match"),
    [
        ("CartPole-v1", {"mass": [1, 2]}, ConfigError, "no parameter 'mass'; valid: length"),
        ("Pendulum-v1", {"mass": [2, 1]}, ConfigError, "need finite low <= high"),
        ("Pendulum-v1", {"mass": [0, 1, "log"]}, ConfigError, "log-uniform range needs low > 0"),
        ("Pendulum-v1", {"mass": [1, 2, "normal"]}, ConfigError, "'normal' is unknown"),
        ("Pendulum-v1", {"mass": "heavy"}, ConfigError, "expected a number, \\[low, high\\]"),
        ("MountainCar-v0", {"mass": [1, 2]}, EnvError, "not available for 'MountainCar-v0'"),
    ],
)
def test_bad_tables_name_the_problem(env_id, table, error, match):
    with pytest.raises(error, match=match):
        make_vector_env(env_id, 1, 0, randomize=table)
