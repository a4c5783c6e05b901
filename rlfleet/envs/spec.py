"""What an agent needs to know about an environment before it builds anything: observation
shape and dtype, and the action space. One probe environment answers it, then closes.

Action spaces come in the kinds algorithms declare they handle (:data:`ACTION_KINDS`):
``"discrete"`` (``Discrete`` numbered from 0) and ``"continuous"`` (a 1-D ``Box`` with finite
bounds). :func:`check_action_kind` refuses anything else with a message naming the space and
the algorithms that can handle it."""

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
    def action_kind(self) -> str:
        """``"discrete"``, ``"continuous"``, or ``"unsupported"`` (see :func:`action_kind`)."""
        return action_kind(self.action_space)

    @property
    def action_dim(self) -> int:
        """D of a continuous (1-D Box) action space; EnvError for any other kind."""
        if self.action_kind != "continuous":
            raise EnvError(
                f"action_dim is defined for 1-D Box actions; {self.env_id} has {self.action_space}"
            )
        return int(self.action_space.shape[0])

    @property
    def action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` float32 ``[D]`` of a continuous action space."""
        self.action_dim  # noqa: B018 - raises for other kinds
        space = self.action_space
        return np.asarray(space.low, np.float32), np.asarray(space.high, np.float32)

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


#: Action-space kinds an algorithm may declare it handles (``AgentSpec.action_kinds``).
ACTION_KINDS = ("discrete", "continuous")
_KIND_SPACES = {"discrete": "Discrete", "continuous": "bounded 1-D Box"}


def action_kind(space: gym.Space) -> str:
    """``"discrete"`` for ``Discrete``, ``"continuous"`` for a 1-D float ``Box`` with finite
    bounds, ``"unsupported"`` for anything else (infinite bounds, MultiDiscrete, Dict, ...)."""
    if isinstance(space, gym.spaces.Discrete):
        return "discrete"
    if (
        isinstance(space, gym.spaces.Box)
        and len(space.shape) == 1
        and np.issubdtype(space.dtype, np.floating)
        and np.isfinite(space.low).all()
        and np.isfinite(space.high).all()
    ):
        return "continuous"
    return "unsupported"


def _why_unsupported(space: gym.Space) -> str:
    if isinstance(space, gym.spaces.Box):
        if len(space.shape) != 1:
            return f"a Box of shape {space.shape} (actions must be one vector)"
        if not np.issubdtype(space.dtype, np.floating):
            return f"an integer Box ({space.dtype})"
        return (
            "a Box with infinite bounds (a Gaussian policy is squashed or clipped into finite "
            "bounds: register a wrapper whose action space states the range the environment "
            "really accepts)"
        )
    return f"a {type(space).__name__} space"


def check_action_kind(
    space: gym.Space,
    env_id: str,
    algorithm: str,
    kinds: tuple[str, ...],
    handlers: dict[str, list[str]],
) -> str:
    """The action kind of ``space`` if ``algorithm`` handles it (``kinds``); EnvError otherwise,
    naming the space and the algorithms that can handle it (``handlers``: kind -> algorithm
    names). A Discrete space must be numbered from 0."""
    kind = action_kind(space)
    if kind == "discrete" and int(space.start) != 0:
        raise EnvError(
            f"{algorithm} needs actions numbered from 0; {env_id} has {space} "
            f"(start={int(space.start)})"
        )
    supported = "; ".join(
        f"{k} ({_KIND_SPACES[k]}): {', '.join(handlers.get(k, [])) or 'none'}" for k in ACTION_KINDS
    )
    if kind == "unsupported":
        raise EnvError(
            f"{env_id} has action space {space}, {_why_unsupported(space)}, which no rlfleet "
            f"algorithm handles. Supported action spaces and the algorithms for them: {supported}"
        )
    if kind not in kinds:
        able = ", ".join(handlers.get(kind, [])) or "none"
        raise EnvError(
            f"{algorithm} needs {' or '.join(kinds)} actions; {env_id} has {space} ({kind} "
            f"actions). Algorithms that handle them (run.algorithm): {able}"
        )
    return kind
