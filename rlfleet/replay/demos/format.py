"""The demonstration file format, and :class:`Demonstrations`, its in-memory container.

A demonstration file is ONE ``.npz`` archive (read with ``allow_pickle=False``; nothing in it can
run code) holding per-step arrays, one per-episode array and a JSON metadata document stored as a
``uint8`` array of UTF-8 bytes. See docs/demonstrations.md for the full specification.

Arrays (T = total steps, E = episodes, S = observation shape)::

    obs         [T, *S]  obs dtype   the observation the action was taken in (s_t)
    action      [T]      int64       the demonstrated action a_t, in [0, num_actions)
    reward      [T]      float64     r_t as the environment returned it (unclipped)
    terminated  [T]      bool        the episode reached a terminal state after this step
    truncated   [T]      bool        the episode was cut (time limit) after this step
    episode_id  [T]      int64       0..E-1; each episode's steps are contiguous and in order
    final_obs   [E, *S]  obs dtype   the true observation after each episode's last step
    meta        [bytes]  uint8       UTF-8 JSON metadata (below)

Next-observation convention: ``next_obs[t] = obs[t + 1]`` inside an episode and
``final_obs[episode]`` at an episode's last step. Storing ``next_obs`` explicitly would double the
file for image observations; ``final_obs`` keeps the exact terminal / time-limit observation that
the bootstrap of a truncated episode needs. Every episode is complete: its last step (and only
that step) has ``terminated or truncated``.

Metadata keys: ``format`` (``"rlfleet.demonstrations"``), ``format_version`` (1), ``env_id``,
``env_kwargs``, ``observation_space`` (``shape``, ``dtype``, ``low_min``, ``low_max``,
``high_min``, ``high_max``; infinities as the strings ``"inf"`` / ``"-inf"`` so the JSON stays
strict), ``action_space`` (``{"type": "Discrete", "n": N}``), ``episode_returns``,
``episode_lengths``, ``episode_seeds`` (the reset seed of each episode, or null), ``source``
(e.g. ``"script:module:function"`` or ``"checkpoint:PATH"``), ``created`` (ISO 8601, UTC),
``num_steps``, ``num_episodes``.

The in-memory container is :class:`Demonstrations`; :func:`make_demonstrations` builds one with
its metadata. Its n-step replay items come from :mod:`.transitions`, its structural checks from
:mod:`.checks`, and reading and writing files from :mod:`.files`.

Layer: replay. numpy only: no torch and no environments; recording episodes from a policy is
:func:`rlfleet.envs.record.record_episodes`.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlfleet.errors import ReplayError
from rlfleet.replay.demos.checks import structural_problems
from rlfleet.replay.demos.transitions import demo_transitions

__all__ = [
    "ARRAY_KEYS",
    "DEMO_FORMAT",
    "DEMO_FORMAT_VERSION",
    "STEP_KEYS",
    "Demonstrations",
    "make_demonstrations",
    "space_summary",
]

DEMO_FORMAT = "rlfleet.demonstrations"
DEMO_FORMAT_VERSION = 1

#: The per-step arrays of a file, and every array a file must hold.
STEP_KEYS = ("obs", "action", "reward", "terminated", "truncated", "episode_id")
ARRAY_KEYS = (*STEP_KEYS, "final_obs", "meta")


# --------------------------------------------------------------------------- metadata helpers


def _json_float(x: float) -> float | str:
    # Strict JSON has no Infinity/NaN; gym Box bounds are often +-inf.
    x = float(x)
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def space_summary(observation_space: Any) -> dict[str, Any]:
    """JSON-safe summary of a Box-like observation space: shape, dtype and low/high ranges.

    Duck-typed (``shape``, ``dtype``, optional ``low`` / ``high``) so the replay layer needs no
    Gymnasium import. Spaces without bounds get ``None`` for the four range entries.
    """
    shape = [int(d) for d in observation_space.shape]
    summary: dict[str, Any] = {"shape": shape, "dtype": np.dtype(observation_space.dtype).name}
    for name in ("low", "high"):
        bound = getattr(observation_space, name, None)
        if bound is None:
            summary[f"{name}_min"] = summary[f"{name}_max"] = None
        else:
            arr = np.asarray(bound, dtype=np.float64)
            summary[f"{name}_min"] = _json_float(arr.min()) if arr.size else None
            summary[f"{name}_max"] = _json_float(arr.max()) if arr.size else None
    return summary


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- the container


@dataclass
class Demonstrations:
    """Demonstration episodes in memory: the arrays of the file format plus its metadata.

    Build with :func:`make_demonstrations` (computes and checks the metadata), read with
    :func:`load_demos`, write with :func:`write_demos`. Arrays follow the module docstring.
    """

    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    episode_id: np.ndarray
    final_obs: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    # ----------------------------------------------------------- metadata accessors
    @property
    def env_id(self) -> str:
        return str(self.meta["env_id"])

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.meta["observation_space"]["shape"])

    @property
    def obs_dtype(self) -> np.dtype:
        return np.dtype(self.meta["observation_space"]["dtype"])

    @property
    def num_actions(self) -> int:
        return int(self.meta["action_space"]["n"])

    @property
    def num_steps(self) -> int:
        return int(self.action.shape[0])

    @property
    def num_episodes(self) -> int:
        return int(self.final_obs.shape[0])

    @property
    def episode_returns(self) -> np.ndarray:
        return np.asarray(self.meta["episode_returns"], dtype=np.float64)

    @property
    def episode_lengths(self) -> np.ndarray:
        return np.asarray(self.meta["episode_lengths"], dtype=np.int64)

    @property
    def episode_seeds(self) -> list[int | None]:
        return list(self.meta["episode_seeds"])

    @property
    def source(self) -> str:
        return str(self.meta["source"])

    # ----------------------------------------------------------- derived arrays
    def episode_ends(self) -> np.ndarray:
        """Index of the last step of every episode, int64 ``[E]``."""
        return np.cumsum(self.episode_lengths) - 1

    def next_obs(self) -> np.ndarray:
        """``next_obs[t]``: ``obs[t + 1]`` inside an episode, ``final_obs`` at its last step."""
        out = np.empty_like(self.obs)
        out[:-1] = self.obs[1:]
        out[self.episode_ends()] = self.final_obs
        return out

    def transitions(
        self,
        n: int,
        gamma: float,
        imitate_episodes: np.ndarray | Sequence[bool] | None = None,
    ) -> dict[str, np.ndarray]:
        """One replay item per demonstration step, with its 1-step AND n-step targets.

        Fields (length T each; the n-step fields use the names of the Ape-X replay layout, see
        ``rlfleet.runtime.learner.replay_fields``, so a demonstration batch is a superset of it)::

            obs         s_t
            action      a_t (int64)
            reward      sum_{k<m} gamma^k r_{t+k}, m = min(n, steps left in the episode) (float32)
            discount    gamma^m, or 0 if the episode terminated within those m steps (float32)
            next_obs    s_{t+m}
            reward_1, discount_1, next_obs_1   the same with n = 1 (DQfD's J_DQ term)
            is_demo     True (bool): marks demonstration items in a mixed batch
            imitate     bool: apply the large-margin loss (``imitate_episodes[episode]``; all
                        True by default; Ape-X DQfD restricts it to the best episodes)
            episode     the item's episode index (int64)

        Episode ends are treated exactly as :class:`~rlfleet.replay.nstep.NStepAccumulator`
        treats them (and tests check equality against it): sequences are cut at the episode's
        last step; truncation keeps the bootstrap discount ``gamma^m``, termination zeroes it.
        Returns are accumulated in float64 with the accumulator's order of operations.

        Raises:
            ReplayError: ``n`` not an int >= 1, ``gamma`` outside [0, 1], or a bad
                ``imitate_episodes`` (wrong length or not boolean).
        """
        return demo_transitions(self, n, gamma, imitate_episodes)

    # ----------------------------------------------------------- checks
    def check(self, where: str = "demonstrations") -> None:
        """Raise :class:`ReplayError` naming every structural inconsistency found."""
        problems = structural_problems(self)
        if problems:
            raise ReplayError(f"{where} are malformed: " + "; ".join(problems))

    def mismatches(
        self,
        expect_env_id: str | None = None,
        expect_obs_shape: Sequence[int] | None = None,
        expect_obs_dtype: np.dtype | type | str | None = None,
        expect_num_actions: int | None = None,
    ) -> list[str]:
        """Human-readable ``"field: expected X, found Y"`` for every expectation not met."""
        out: list[str] = []
        if expect_env_id is not None and expect_env_id != self.env_id:
            out.append(f"env_id: expected {expect_env_id!r}, found {self.env_id!r}")
        if expect_obs_shape is not None:
            want = tuple(int(d) for d in expect_obs_shape)
            if want != self.obs_shape:
                out.append(f"obs_shape: expected {want}, found {self.obs_shape}")
        if expect_obs_dtype is not None:
            want_dt = np.dtype(expect_obs_dtype)
            if want_dt != self.obs_dtype:
                out.append(f"obs_dtype: expected {want_dt.name}, found {self.obs_dtype.name}")
        if expect_num_actions is not None and int(expect_num_actions) != self.num_actions:
            out.append(f"num_actions: expected {int(expect_num_actions)}, found {self.num_actions}")
        return out


# --------------------------------------------------------------------------- building


def make_demonstrations(
    *,
    env_id: str,
    observation_space: Any,
    num_actions: int,
    obs: np.ndarray,
    action: np.ndarray,
    reward: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    episode_id: np.ndarray,
    final_obs: np.ndarray,
    episode_seeds: Sequence[int | None] | None = None,
    source: str = "unknown",
    env_kwargs: Mapping[str, Any] | None = None,
    created: str | None = None,
) -> Demonstrations:
    """Assemble and check :class:`Demonstrations`; returns and lengths are computed here.

    ``observation_space`` is a Box-like object (see :func:`space_summary`) or an already
    summarised dict. Arrays are converted to the file's dtypes (action int64, reward float64,
    flags bool, episode_id int64); observations keep their dtype.

    Raises:
        ReplayError: any inconsistency (all of them, in one message).
    """
    summary = (
        dict(observation_space)
        if isinstance(observation_space, Mapping)
        else space_summary(observation_space)
    )
    episode_id = np.asarray(episode_id, dtype=np.int64)
    reward = np.asarray(reward, dtype=np.float64)
    e = int(np.asarray(final_obs).shape[0])
    lengths = np.bincount(episode_id, minlength=e)[:e] if episode_id.size else np.zeros(e, int)
    returns = np.bincount(episode_id, weights=reward, minlength=e)[:e] if e else np.zeros(0)
    seeds = list(episode_seeds) if episode_seeds is not None else [None] * e
    meta = {
        "format": DEMO_FORMAT,
        "format_version": DEMO_FORMAT_VERSION,
        "env_id": str(env_id),
        "env_kwargs": dict(env_kwargs or {}),
        "observation_space": summary,
        "action_space": {"type": "Discrete", "n": int(num_actions)},
        "episode_returns": [float(x) for x in returns],
        "episode_lengths": [int(x) for x in lengths],
        "episode_seeds": [None if s is None else int(s) for s in seeds],
        "source": str(source),
        "created": created or _utc_now(),
        "num_steps": int(episode_id.shape[0]),
        "num_episodes": e,
    }
    demos = Demonstrations(
        obs=np.asarray(obs),
        action=np.asarray(action).astype(np.int64, copy=False),
        reward=reward,
        terminated=np.asarray(terminated).astype(bool, copy=False),
        truncated=np.asarray(truncated).astype(bool, copy=False),
        episode_id=episode_id,
        final_obs=np.asarray(final_obs),
        meta=meta,
    )
    demos.check()
    return demos
