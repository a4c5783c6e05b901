"""netsim's compiled vector engine behind rlfleet's :class:`~rlfleet.envs.vector.BatchedEnv`.

Actors step environments through ``BatchedEnv`` (same-step autoreset: ``obs`` is already the
next episode's first observation, ``next_obs`` the true final one). The compiled engine runs
thousands of 100 ms windows per second where the event engine behind a ``SyncVectorEnv`` runs
a few hundred, and its observations agree bit for bit with the event engine
(tests/integration/test_netsim_vector_agreement.py).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from rlfleet.envs.netsim.vector import NetSimVectorEnv
from rlfleet.envs.vector import BatchedEnv, StepResult

#: keyword arguments the compiled engine understands; anything else needs the event engine
SUPPORTED_KWARGS = frozenset(inspect.signature(NetSimVectorEnv.__init__).parameters) - {
    "self",
    "num_envs",
}


def supports(kwargs: dict[str, Any]) -> bool:
    """True if the compiled engine can run an env made with these keyword arguments."""
    return set(kwargs) <= SUPPORTED_KWARGS


class NetSimBatched(BatchedEnv):
    """K netsim environments on the compiled engine; env i is seeded ``seed + i``."""

    def __init__(self, num_envs: int, seed: int, env_id: str, **kwargs: Any) -> None:
        self._venv = NetSimVectorEnv(num_envs, **kwargs)
        self.envs = []
        self.env_id = env_id
        self.seed = int(seed)
        self.num_envs = int(num_envs)
        self.observation_space = self._venv.single_observation_space
        self.action_space = self._venv.single_action_space
        self.obs_shape = tuple(self.observation_space.shape)
        self.obs_dtype = np.dtype(self.observation_space.dtype)
        self._ep_return = np.zeros(self.num_envs, dtype=np.float64)
        self._ep_length = np.zeros(self.num_envs, dtype=np.int64)
        self._needs_reset = True
        self._closed = False

    def reset(self) -> np.ndarray:
        obs, _ = self._venv.reset(seed=self.seed if self._needs_reset else None)
        self._ep_return[:] = 0.0
        self._ep_length[:] = 0
        self._needs_reset = False
        return obs.astype(self.obs_dtype, copy=False)

    def step(self, actions: np.ndarray) -> StepResult:
        obs, reward, terminated, truncated, _ = self._venv.step(np.asarray(actions))
        reward = reward.astype(np.float32)
        self._ep_return += reward
        self._ep_length += 1
        done = terminated | truncated
        episode_returns = np.where(done, self._ep_return, np.nan)
        episode_lengths = np.where(done, self._ep_length, 0)
        next_obs = obs.astype(self.obs_dtype, copy=False)
        if done.any():
            first = self._venv.reset_envs(done)
            obs = np.where(done[:, None], first, obs)
            self._ep_return[done] = 0.0
            self._ep_length[done] = 0
        return StepResult(
            obs=obs.astype(self.obs_dtype, copy=False),
            next_obs=next_obs,
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            episode_returns=episode_returns,
            episode_lengths=episode_lengths,
        )

    def close(self) -> None:
        if not self._closed:
            self._venv.close()
            self._closed = True
