"""K environments stepped as one batch, with same-step autoreset and episode statistics.

:class:`BatchedEnv` is a plain loop over K Gymnasium environments. For the small environments
rlfleet trains on (CartPole, MinAtar) a direct loop is cheaper than Gymnasium's vector wrappers,
which deep-copy infos and observations on every step; for Atari the emulator dominates either way.

Episode statistics come from the wrapped environments' raw rewards, with two optional ``info``
keys that wrappers below may set (the Atari stack does):

* ``"raw_reward"``: the unclipped reward of this step (when training clips rewards);
* ``"game_over"``: False when ``terminated`` only marks a lost life (terminal-on-life-loss), so the
  game - and the reported episode - goes on.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from rlfleet.errors import EnvError

__all__ = ["BatchedEnv", "StepResult"]


@dataclass(frozen=True)
class StepResult:
    """What one :meth:`BatchedEnv.step` returns; every array has K rows.

    Attributes:
        obs: observations to act on next (already the reset observation where an episode ended).
        next_obs: the true next observations: the final observation where an episode ended,
            equal to ``obs`` elsewhere (the same array object when no episode ended).
        reward: float32 rewards as the agent sees them (clipped for Atari training).
        terminated: bool, a terminal state was reached (no bootstrap). With terminal-on-life-loss
            this includes lost lives.
        truncated: bool, the episode was cut by a time limit (bootstrap kept).
        episode_returns: float64, the undiscounted return of the episode (game) that ended at this
            step from the raw, unclipped rewards; NaN where none ended. With terminal-on-life-loss
            a lost life is NOT an episode end here: the value appears once, when the game ends,
            and covers all its lives.
        episode_lengths: int64, the agent steps of that episode (game); 0 where none ended.
    """

    obs: np.ndarray
    next_obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    episode_returns: np.ndarray
    episode_lengths: np.ndarray


class BatchedEnv:
    """K Gymnasium environments with a discrete or continuous action space, stepped together.

    Environment i is seeded with ``seed + i`` on the first :meth:`reset`; later (automatic) resets
    continue each environment's own random stream, so a run is reproducible from ``seed``.

    Args:
        envs: the K environments (same observation and action spaces).
        seed: base seed.
        env_id: the id they were made from (for messages).
    """

    def __init__(self, envs: list[gym.Env], seed: int, env_id: str = "") -> None:
        if not envs:
            raise EnvError("BatchedEnv needs at least one environment, got an empty list")
        self.envs = list(envs)
        self.env_id = env_id
        self.seed = int(seed)
        self.num_envs = len(self.envs)
        self.observation_space: gym.Space = self.envs[0].observation_space
        self.action_space: gym.Space = self.envs[0].action_space
        shape = self.observation_space.shape
        if shape is None:
            raise EnvError(
                f"{env_id or 'environment'} has observation space {self.observation_space}, "
                "which has no fixed array shape; supported: Box and Discrete observations"
            )
        self.obs_shape: tuple[int, ...] = tuple(shape)
        self.obs_dtype = np.dtype(self.observation_space.dtype)
        self._obs = np.zeros((self.num_envs, *self.obs_shape), dtype=self.obs_dtype)
        self._ep_return = np.zeros(self.num_envs, dtype=np.float64)
        self._ep_length = np.zeros(self.num_envs, dtype=np.int64)
        self._needs_reset = True
        self._closed = False

    @property
    def num_actions(self) -> int:
        """Number of discrete actions; EnvError for a non-Discrete action space."""
        if not isinstance(self.action_space, gym.spaces.Discrete):
            raise EnvError(
                f"num_actions is defined for Discrete action spaces; {self.env_id or 'this env'} "
                f"has {self.action_space}"
            )
        return int(self.action_space.n)

    def reset(self) -> np.ndarray:
        """Reset all environments (seeding them ``seed + i`` on the first call); [K, *obs_shape]."""
        first = self._needs_reset
        for i, env in enumerate(self.envs):
            obs, _ = env.reset(seed=self.seed + i if first else None)
            self._obs[i] = obs
        if first:
            for i, env in enumerate(self.envs):
                env.action_space.seed(self.seed + i)
        self._needs_reset = False
        self._ep_return[:] = 0.0
        self._ep_length[:] = 0
        return self._obs.copy()

    def step(self, actions: np.ndarray) -> StepResult:
        """Step every environment once with ``actions`` ([K]); see :class:`StepResult`."""
        if self._needs_reset:
            raise EnvError("call reset() before step() (the environments have not been reset)")
        actions = np.asarray(actions)
        if actions.shape[:1] != (self.num_envs,):
            raise EnvError(
                f"actions must have {self.num_envs} rows (one per env), got shape {actions.shape}"
            )
        k = self.num_envs
        # Python lists in the loop, one numpy conversion after it: per-item numpy stores cost
        # more than the CartPole step itself.
        discrete = isinstance(self.action_space, gym.spaces.Discrete)
        acts = actions.tolist() if discrete else list(actions)
        obs_list: list = [None] * k
        rewards = [0.0] * k
        raws = [0.0] * k
        terms = [False] * k
        truncs = [False] * k
        game_over = [True] * k
        finals: list[tuple[int, object]] = []
        for i, env in enumerate(self.envs):
            o, r, term, trunc, info = env.step(acts[i])
            rewards[i] = r
            terms[i] = term
            truncs[i] = trunc
            raws[i] = info.get("raw_reward", r) if info else r
            if term or trunc:
                if info and not trunc:
                    game_over[i] = info.get("game_over", True)
                finals.append((i, o))
                o, _ = env.reset()
            obs_list[i] = o
        # Fresh arrays every step: callers keep the previous obs (as s_t) while stepping.
        obs = np.empty_like(self._obs)
        for i, o in enumerate(obs_list):
            obs[i] = o
        self._obs = obs
        reward = np.array(rewards, dtype=np.float32)
        terminated = np.array(terms, dtype=bool)
        truncated = np.array(truncs, dtype=bool)
        raw = np.array(raws, dtype=np.float64)

        self._ep_return += raw
        self._ep_length += 1
        ended = (terminated | truncated) & np.array(game_over, dtype=bool)
        episode_returns = np.where(ended, self._ep_return, np.nan)
        episode_lengths = np.where(ended, self._ep_length, 0)
        self._ep_return[ended] = 0.0
        self._ep_length[ended] = 0

        if finals:
            next_obs = obs.copy()
            for i, o in finals:
                next_obs[i] = o
        else:
            next_obs = obs
        return StepResult(
            obs=obs,
            next_obs=next_obs,
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            episode_returns=episode_returns,
            episode_lengths=episode_lengths,
        )

    def close(self) -> None:
        """Close every environment (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for env in self.envs:
            env.close()

    def __enter__(self) -> BatchedEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
