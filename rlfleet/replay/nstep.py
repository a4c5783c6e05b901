"""n-step transition accumulator for actors, vectorised across K environments.

An actor steps K environments as a batch and hands every step to :meth:`NStepAccumulator.step`.
The accumulator keeps, per environment, the up to ``n`` sequences that are still open and emits
each one as a finished n-step transition as soon as it is complete::

    obs       the observation the first action was taken in (s_t)
    action    that first action (a_t)
    reward    sum_{k<m} gamma^k r_{t+k}           (float32)
    discount  gamma^m, or 0.0 if the episode TERMINATED within the m steps (float32)
    next_obs  the observation m steps later (s_{t+m})
    env_index which of the K environments produced it (int64)

``m == n`` normally. When an episode ends (terminated or truncated) every open sequence of that
environment is flushed with its own ``m < n``. Truncation (time limit) keeps the bootstrap
discount gamma^m, termination sets it to zero — Gymnasium reports the two separately and the
n-step double-DQN target must treat them differently.

Storage is a preallocated ring over time shared by all environments: all K envs advance one step
per call, so sequence slot ``t % n`` starts at step ``t`` for every env at once. Each call updates
the running returns of all open slots with one broadcast operation; the only Python loop anywhere
is implicit in numpy.
"""

from __future__ import annotations

import numpy as np

from rlfleet.errors import ReplayError

__all__ = ["NStepAccumulator"]

_KEYS = ("obs", "action", "reward", "discount", "next_obs", "env_index")


class NStepAccumulator:
    """Turns per-step batches of K environments into n-step transitions.

    Args:
        num_envs: K, the number of environments stepped together (>= 1).
        n: the number of steps summed per transition (>= 1; n = 1 gives one-step transitions).
        gamma: discount factor in [0, 1].
        obs_shape: shape of ONE observation (without the K axis).
        obs_dtype: dtype of observations; stored and returned unchanged.
        one_step: also emit each transition's 1-step target (``reward_1, discount_1,
            next_obs_1``: r_t, gamma or 0 if the first step terminated, s_{t+1}) alongside the
            n-step one, as DQfD's 1-step loss needs. Costs one more observation per slot.
        action_shape, action_dtype: layout of ONE action: ``()`` int64 (a Discrete index, the
            default) or e.g. ``(D,)`` float32 (a Box vector, Ape-X DPG).

    Output order of :meth:`step`: grouped by environment index (ascending), and within one
    environment oldest sequence first.
    """

    def __init__(
        self,
        num_envs: int,
        n: int,
        gamma: float,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype | type | str,
        one_step: bool = False,
        action_shape: tuple[int, ...] = (),
        action_dtype: np.dtype | type | str = np.int64,
    ) -> None:
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ReplayError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ReplayError(f"n must be an integer >= 1, got {n!r}")
        if not (0.0 <= float(gamma) <= 1.0):
            raise ReplayError(f"gamma must be in [0, 1], got {gamma!r}")
        try:
            obs_shape = tuple(int(d) for d in obs_shape)
        except TypeError as exc:
            raise ReplayError(f"obs_shape must be a tuple of ints, got {obs_shape!r}") from exc
        if any(d < 0 for d in obs_shape):
            raise ReplayError(f"obs_shape must have non-negative sizes, got {obs_shape!r}")
        self.num_envs = int(num_envs)
        self.n = int(n)
        self.gamma = float(gamma)
        self.obs_shape = obs_shape
        self.obs_dtype = np.dtype(obs_dtype)

        k, n = self.num_envs, self.n
        # Ring over the last n start steps (axis 0) for every env (axis 1).
        self._obs = np.zeros((n, k, *obs_shape), dtype=self.obs_dtype)
        self.action_shape = tuple(int(d) for d in action_shape)
        self._action = np.zeros((n, k, *self.action_shape), dtype=np.dtype(action_dtype))
        # Returns accumulate in float64 so that long n / many small rewards lose nothing before
        # the final float32 cast.
        self._ret = np.zeros((n, k), dtype=np.float64)
        self._gpow = np.ones((n, k), dtype=np.float64)  # gamma^(steps accumulated so far)
        self._len = np.zeros((n, k), dtype=np.int64)
        self._open = np.zeros((n, k), dtype=bool)
        self._start = np.zeros(n, dtype=np.int64)  # global step at which each slot started
        self._t = 0
        self._env_col = np.broadcast_to(np.arange(k, dtype=np.int64), (n, k))
        self.one_step = bool(one_step)
        if self.one_step:
            # the first step of each open sequence: r_t, its bootstrap discount and s_{t+1}
            self._reward_1 = np.zeros((n, k), dtype=np.float32)
            self._discount_1 = np.zeros((n, k), dtype=np.float32)
            self._next_obs_1 = np.zeros((n, k, *obs_shape), dtype=self.obs_dtype)

    @property
    def pending(self) -> int:
        """Number of open (not yet emitted) sequences across all environments."""
        return int(self._open.sum())

    def reset(self) -> None:
        """Drop every open sequence (e.g. after the caller reset all environments)."""
        self._open[:] = False
        self._len[:] = 0
        self._ret[:] = 0.0
        self._gpow[:] = 1.0
        self._t = 0

    def _check(self, name: str, arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        arr = np.asarray(arr)
        if arr.shape != shape:
            raise ReplayError(
                f"{name} must have shape {shape} (num_envs={self.num_envs}), got {arr.shape}"
            )
        return arr

    def step(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        next_obs: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """Add one step of all K environments; return the transitions it completed.

        Args:
            obs: [K, *obs_shape], the observations the actions were taken in.
            action: [K, *action_shape] actions (integers by default).
            reward: [K] rewards.
            terminated: [K] bool, the episode reached a terminal state (no bootstrap).
            truncated: [K] bool, the episode was cut (time limit; bootstrap kept).
            next_obs: [K, *obs_shape], the TRUE next observations (the final observation where an
                episode ended, not the first observation of the next episode).

        Returns:
            A dict with keys ``obs, action, reward, discount, next_obs, env_index`` (plus
            ``reward_1, discount_1, next_obs_1`` with ``one_step``); arrays of length 0 when
            nothing completed. All arrays are fresh copies.

        Raises:
            ReplayError: on a wrong shape or a non-finite reward; nothing is recorded then.
        """
        k = self.num_envs
        obs_shape = (k, *self.obs_shape)
        obs = self._check("obs", obs, obs_shape)
        next_obs = self._check("next_obs", next_obs, obs_shape)
        action = self._check("action", action, (k, *self.action_shape))
        reward = self._check("reward", reward, (k,)).astype(np.float64, copy=False)
        terminated = self._check("terminated", terminated, (k,)).astype(bool, copy=False)
        truncated = self._check("truncated", truncated, (k,)).astype(bool, copy=False)
        if not np.isfinite(reward).all():
            bad = np.flatnonzero(~np.isfinite(reward))
            raise ReplayError(
                f"reward must be finite; env(s) {bad.tolist()} gave {reward[bad].tolist()}"
            )

        # Open a new sequence in slot t % n for every env. The slot's previous occupant started
        # n steps ago, so it was emitted by the previous call at the latest.
        pos = self._t % self.n
        self._obs[pos] = obs
        self._action[pos] = action
        self._ret[pos] = 0.0
        self._gpow[pos] = 1.0
        self._len[pos] = 0
        self._open[pos] = True
        self._start[pos] = self._t
        self._t += 1
        if self.one_step:
            self._reward_1[pos] = reward
            self._discount_1[pos] = np.where(terminated, 0.0, self.gamma)
            self._next_obs_1[pos] = next_obs

        # Add r_t * gamma^len to every open sequence of every env in one broadcast.
        opened = self._open
        self._ret += np.where(opened, self._gpow * reward[None, :], 0.0)
        self._gpow = np.where(opened, self._gpow * self.gamma, self._gpow)
        self._len += opened

        ended = terminated | truncated
        done = opened & ((self._len >= self.n) | ended[None, :])
        # Env-major order, oldest sequence first within an env.
        slots, envs = np.nonzero(done)
        order = np.lexsort((self._start[slots], envs))
        slots, envs = slots[order], envs[order]

        discount = self._gpow[slots, envs].astype(np.float32)
        discount[terminated[envs]] = 0.0
        out = {
            "obs": self._obs[slots, envs],
            "action": self._action[slots, envs],
            "reward": self._ret[slots, envs].astype(np.float32),
            "discount": discount,
            "next_obs": next_obs[envs].astype(self.obs_dtype, copy=False),
            "env_index": self._env_col[slots, envs].copy(),
        }
        if self.one_step:
            out["reward_1"] = self._reward_1[slots, envs]
            out["discount_1"] = self._discount_1[slots, envs]
            out["next_obs_1"] = self._next_obs_1[slots, envs]
        self._open[slots, envs] = False
        return out
