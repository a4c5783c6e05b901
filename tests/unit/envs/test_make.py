"""Environment construction, batched stepping, autoreset and episode statistics."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rlfleet.envs import BatchedEnv, StepResult, check_discrete, known_env_ids, make_vector_env
from rlfleet.envs.atari import atari_available
from rlfleet.envs.cartpole import VectorCartPole
from rlfleet.envs.minatar import minatar_available
from rlfleet.errors import EnvError


def _policy(step: int, k: int) -> np.ndarray:
    # Deterministic, not constant: alternating blocks so CartPole episodes vary in length.
    return np.array([((step // 3) + i) % 2 for i in range(k)], dtype=np.int64)


@pytest.mark.parametrize(
    "env_id, env_kwargs, width",
    [
        ("CartPole-v1", None, 4),
        ("CartPole-v1", {"sutton_barto_reward": False}, 4),
        ("rlfleet/CartPoleNoVelocity-v1", None, 2),
    ],
)
def test_cartpole_matches_single_envs_stepped_by_hand(env_id, env_kwargs, width):
    """Both the array fast path (no kwargs) and the generic loop equal gymnasium's own env;
    the no-velocity variant too (positions only, same dynamics)."""
    k, steps, seed = 4, 300, 123
    venv = make_vector_env(env_id, k, seed, max_episode_steps=40, env_kwargs=env_kwargs)
    assert isinstance(venv, VectorCartPole) == (env_kwargs is None)
    assert venv.num_envs == k and venv.num_actions == 2
    assert venv.obs_shape == (width,) and venv.obs_dtype == np.float32
    obs = venv.reset()
    assert obs.shape == (k, width)

    refs = [gym.make(env_id, max_episode_steps=40) for _ in range(k)]
    ref_obs = [e.reset(seed=seed + i)[0] for i, e in enumerate(refs)]
    np.testing.assert_array_equal(obs, np.stack(ref_obs))
    ref_ret = [0.0] * k
    ref_len = [0] * k
    seen_term = seen_trunc = 0
    for t in range(steps):
        acts = _policy(t, k)
        r = venv.step(acts)
        assert isinstance(r, StepResult)
        for i, e in enumerate(refs):
            o, rew, term, trunc, _ = e.step(int(acts[i]))
            ref_ret[i] += rew
            ref_len[i] += 1
            assert r.reward[i] == rew and r.terminated[i] == term and r.truncated[i] == trunc
            np.testing.assert_array_equal(r.next_obs[i], o)  # the TRUE next obs
            if term or trunc:
                seen_term += term
                seen_trunc += trunc
                assert r.episode_returns[i] == ref_ret[i]
                assert r.episode_lengths[i] == ref_len[i]
                ref_ret[i], ref_len[i] = 0.0, 0
                o, _ = e.reset()
                assert not np.array_equal(r.obs[i], r.next_obs[i])
            else:
                assert np.isnan(r.episode_returns[i]) and r.episode_lengths[i] == 0
            np.testing.assert_array_equal(r.obs[i], o)  # what to act on next
        assert r.reward.dtype == np.float32 and r.terminated.dtype == bool
        assert r.episode_returns.dtype == np.float64 and r.episode_lengths.dtype == np.int64
    assert seen_term > 0 and seen_trunc > 0  # both kinds of episode end were exercised
    venv.close()


def test_returned_obs_are_not_overwritten_by_later_steps():
    venv = make_vector_env("CartPole-v1", 2, 0)
    first = venv.reset()
    kept = first.copy()
    r1 = venv.step(np.zeros(2, np.int64))
    r1_obs = r1.obs.copy()
    venv.step(np.ones(2, np.int64))
    np.testing.assert_array_equal(first, kept)
    np.testing.assert_array_equal(r1.obs, r1_obs)
    venv.close()


def test_distinct_seeds_per_env_and_reproducible():
    a = make_vector_env("CartPole-v1", 3, 7).reset()
    b = make_vector_env("CartPole-v1", 3, 7).reset()
    np.testing.assert_array_equal(a, b)
    assert len({tuple(row) for row in a.tolist()}) == 3


def test_step_before_reset_and_bad_action_rows():
    venv = make_vector_env("CartPole-v1", 2, 0)
    with pytest.raises(EnvError, match="reset"):
        venv.step(np.zeros(2, np.int64))
    venv.reset()
    with pytest.raises(EnvError, match="2 rows"):
        venv.step(np.zeros(3, np.int64))


@pytest.mark.skipif(not minatar_available(), reason="minatar package not installed")
def test_minatar_shape_dtype_and_values():
    venv = make_vector_env("MinAtar/Breakout-v1", 3, 0)
    obs = venv.reset()
    c = venv.obs_shape[0]
    assert obs.shape == (3, c, 10, 10) and venv.obs_shape[1:] == (10, 10)
    assert obs.dtype == np.uint8 and venv.obs_dtype == np.uint8
    assert set(np.unique(obs)) <= {0, 255} and obs.max() == 255
    assert venv.num_actions == 3  # Breakout's minimal action set
    assert "MinAtar/Breakout-v1" in known_env_ids()
    total_eps = 0
    for t in range(300):
        r = venv.step(np.full(3, t % 3))
        assert r.obs.shape == (3, c, 10, 10) and r.obs.dtype == np.uint8
        total_eps += int((~np.isnan(r.episode_returns)).sum())
    assert total_eps > 0
    venv.close()


@pytest.mark.skipif(not minatar_available(), reason="minatar package not installed")
def test_minatar_channel_first_matches_package():
    from minatar import Environment

    venv = make_vector_env("MinAtar/SpaceInvaders-v0", 1, 5)
    obs = venv.reset()
    ref = Environment("space_invaders")
    ref.seed(5)
    ref.reset()
    np.testing.assert_array_equal(obs[0], ref.state().transpose(2, 0, 1).astype(np.uint8) * 255)


def test_unknown_id_lists_close_matches():
    with pytest.raises(EnvError, match=r"unknown environment id 'CartPol-v1'.*CartPole-v1"):
        make_vector_env("CartPol-v1", 1, 0)
    with pytest.raises(EnvError, match=r"'MinAtar/Breakout-v2'.*MinAtar/Breakout-v1"):
        make_vector_env("MinAtar/Breakout-v2", 1, 0)


def test_continuous_actions_are_built_but_rejected_by_check_discrete():
    venv = make_vector_env("Pendulum-v1", 2, 0)  # make_vector_env itself does not refuse
    venv.reset()
    r = venv.step(np.zeros((2, 1), np.float32))
    assert r.obs.shape == (2, 3)
    with pytest.raises(EnvError, match=r"Ape-X DQN needs discrete actions; Pendulum-v1 has Box"):
        check_discrete(venv.action_space, "Pendulum-v1")
    with pytest.raises(EnvError, match="Discrete action spaces"):
        _ = venv.num_actions
    assert check_discrete(gym.spaces.Discrete(3), "X") == 3


def test_bad_num_envs():
    with pytest.raises(EnvError, match="num_envs"):
        make_vector_env("CartPole-v1", 0, 0)
    with pytest.raises(EnvError, match="at least one"):
        BatchedEnv([], seed=0)


@pytest.mark.skipif(not atari_available(), reason="ale-py not installed (extra rlfleet[atari])")
def test_atari_pong_smoke():
    pytest.importorskip("cv2", reason="opencv not installed (extra rlfleet[atari])")
    venv = make_vector_env("ALE/Pong-v5", 2, 0)
    obs = venv.reset()
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    assert venv.num_actions == 6
    for t in range(20):
        r = venv.step(np.full(2, t % 6))
        assert r.obs.shape == (2, 4, 84, 84)
        assert set(np.unique(r.reward)) <= {-1.0, 0.0, 1.0}
    venv.close()


@pytest.mark.skipif(not atari_available(), reason="ale-py not installed (extra rlfleet[atari])")
def test_atari_life_loss_reports_whole_game_unclipped():
    """Training: lives end learning episodes, but the reported return spans the whole game."""
    pytest.importorskip("cv2", reason="opencv not installed (extra rlfleet[atari])")
    venv = make_vector_env("ALE/Breakout-v5", 1, 0)
    venv.reset()
    terminations, clipped_sum, games = 0, 0.0, []
    rng = np.random.default_rng(0)
    while not games:
        r = venv.step(rng.integers(0, venv.num_actions, 1))
        terminations += int(r.terminated[0])
        clipped_sum += float(r.reward[0])
        if not np.isnan(r.episode_returns[0]):
            games.append((r.episode_returns[0], r.episode_lengths[0]))
    assert terminations == 5  # Breakout has 5 lives: 4 lost lives + game over
    ret, length = games[0]
    assert length > 5 and ret >= clipped_sum  # Breakout scores >= 1 per brick
    venv.close()


class _LivesEnv(gym.Env):
    """A game of 3 lives; every step scores 3.0, a life is lost every 4 steps."""

    observation_space = gym.spaces.Box(0, 255, (2,), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.lives, self.resets = 0, 3, getattr(self, "resets", 0) + 1
        return np.array([self.t, self.lives], np.uint8), {"lives": self.lives}

    def step(self, action):
        self.t += 1
        if self.t % 4 == 0:
            self.lives -= 1
        obs = np.array([self.t, self.lives], np.uint8)
        return obs, 3.0, self.lives == 0, False, {"lives": self.lives}


def test_life_loss_and_clipping_wrappers_report_whole_unclipped_game():
    from rlfleet.envs.atari import ClipRewardSign, EpisodicLife

    inner = _LivesEnv()
    venv = BatchedEnv([ClipRewardSign(EpisodicLife(inner))], seed=0)
    venv.reset()
    terms, games = [], []
    for _ in range(20):
        r = venv.step(np.zeros(1, np.int64))
        assert r.reward[0] == 1.0  # clipped for learning
        terms.append(bool(r.terminated[0]))
        if not np.isnan(r.episode_returns[0]):
            games.append((float(r.episode_returns[0]), int(r.episode_lengths[0])))
    # Lives lost at steps 4 and 8 (no-op step on reset adds one game step), game over at 12+...
    assert sum(terms) == 6  # 2 games x 3 lives
    # Each game: 12 env steps of which 2 are the no-op continuation steps taken inside reset()
    # after a lost life; the agent sees 10 steps of raw reward 3.0.
    assert games == [(30.0, 10), (30.0, 10)]
    assert inner.resets == 3  # first reset + 2 game overs: a lost life does not restart the game
