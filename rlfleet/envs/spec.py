"""What an agent needs to know about an environment before it builds anything: observation
shape and dtype, and the action space. One probe environment answers it, then closes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from rlfleet.errors import EnvError


@dataclass(frozen=True)
class EnvSpec:
    """Observation layout and action space of an environment id (with its kwargs)."""

    env_id: str
    obs_shape: tuple[int, ...]
    obs_dtype: np.dtype
    action_space: gym.Space

    @property
    def discrete(self) -> bool:
        return isinstance(self.action_space, gym.spaces.Discrete)

    @property
    def num_actions(self) -> int:
        """Number of discrete actions; EnvError naming the space for any other kind."""
        if not self.discrete:
            raise EnvError(
                f"num_actions is defined for Discrete action spaces; {self.env_id} has "
                f"{self.action_space}"
            )
        return int(self.action_space.n)

    @classmethod
    def of(cls, venv: Any) -> EnvSpec:
        """The spec of a batched environment (:class:`~rlfleet.envs.BatchedEnv` or a fast path)."""
        return cls(
            env_id=str(getattr(venv, "env_id", "")),
            obs_shape=tuple(venv.obs_shape),
            obs_dtype=np.dtype(venv.obs_dtype),
            action_space=venv.action_space,
        )


def probe_env(env_id: str, env_kwargs: dict | None = None, seed: int = 0) -> EnvSpec:
    """The :class:`EnvSpec` of ``env_id``, read off one environment that is closed again."""
    from rlfleet.envs.make import make_vector_env

    probe = make_vector_env(env_id, 1, seed, env_kwargs=env_kwargs or None)
    try:
        spec = EnvSpec.of(probe)
        return EnvSpec(env_id, spec.obs_shape, spec.obs_dtype, spec.action_space)
    finally:
        probe.close()
