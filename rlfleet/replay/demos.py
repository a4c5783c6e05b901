"""Demonstration files: the on-disk format, its validating loader, replay transitions, recording.

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

Layer: replay. numpy only: no torch and no environments; recording episodes from a policy is
:func:`rlfleet.envs.record.record_episodes`.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlfleet.errors import ConfigError, ReplayError
from rlfleet.replay.fields import FieldSpec

__all__ = [
    "DEMO_FORMAT",
    "DEMO_FORMAT_VERSION",
    "Demonstrations",
    "demo_fields",
    "load_demos",
    "make_demonstrations",
    "space_summary",
    "write_demos",
]

DEMO_FORMAT = "rlfleet.demonstrations"
DEMO_FORMAT_VERSION = 1

_STEP_KEYS = ("obs", "action", "reward", "terminated", "truncated", "episode_id")
_ARRAY_KEYS = (*_STEP_KEYS, "final_obs", "meta")


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
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ReplayError(f"n must be an integer >= 1, got {n!r}")
        if not (0.0 <= float(gamma) <= 1.0):
            raise ReplayError(f"gamma must be in [0, 1], got {gamma!r}")
        e = self.num_episodes
        if imitate_episodes is None:
            imitate_ep = np.ones(e, dtype=bool)
        else:
            imitate_ep = np.asarray(imitate_episodes)
            if imitate_ep.dtype != np.bool_ or imitate_ep.shape != (e,):
                raise ReplayError(
                    f"imitate_episodes must be a bool array of shape ({e},) (one per episode), "
                    f"got dtype {imitate_ep.dtype} shape {imitate_ep.shape}"
                )
        next_obs = self.next_obs()
        n_step = self._n_step(int(n), float(gamma), next_obs)
        one_step = self._n_step(1, float(gamma), next_obs)
        return {
            "obs": self.obs.copy(),
            "action": self.action.astype(np.int64),
            "reward": n_step["reward"],
            "discount": n_step["discount"],
            "next_obs": n_step["next_obs"],
            "reward_1": one_step["reward"],
            "discount_1": one_step["discount"],
            "next_obs_1": one_step["next_obs"],
            "is_demo": np.ones(self.num_steps, dtype=bool),
            "imitate": imitate_ep[self.episode_id],
            "episode": self.episode_id.astype(np.int64),
        }

    def _n_step(self, n: int, gamma: float, next_obs: np.ndarray) -> dict[str, np.ndarray]:
        t = np.arange(self.num_steps, dtype=np.int64)
        last = self.episode_ends()[self.episode_id]  # last step of each step's episode
        m = np.minimum(n, last - t + 1)  # steps summed per item (>= 1)
        ret = np.zeros(self.num_steps, dtype=np.float64)
        gpow = np.ones(self.num_steps, dtype=np.float64)
        reward = self.reward.astype(np.float64)
        # Loop over the (small) offset k, not over T: the same "ret += gpow * r; gpow *= gamma"
        # sequence NStepAccumulator runs, so float64 results agree bit for bit.
        for k in range(n):
            active = k < m
            idx = np.minimum(t + k, self.num_steps - 1)
            ret = np.where(active, ret + gpow * reward[idx], ret)
            gpow = np.where(active, gpow * gamma, gpow)
        end = t + m - 1
        discount = gpow.astype(np.float32)
        # Only an episode's last step can carry `terminated`, so this is "terminated within m".
        discount[self.terminated[end]] = 0.0
        return {
            "reward": ret.astype(np.float32),
            "discount": discount,
            "next_obs": next_obs[end],
        }

    # ----------------------------------------------------------- checks
    def check(self, where: str = "demonstrations") -> None:
        """Raise :class:`ReplayError` naming every structural inconsistency found."""
        problems = _structural_problems(self)
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


def demo_fields(obs_shape: tuple[int, ...], obs_dtype: np.dtype | type | str) -> dict[str, Any]:
    """Replay ``FieldSpec`` s for :meth:`Demonstrations.transitions` items (all of its keys).

    For a replay that stores demonstrations and DQfD agent data alike; agent items need the same
    fields (``is_demo`` / ``imitate`` False, ``episode`` -1).
    """
    obs = FieldSpec(shape=tuple(obs_shape), dtype=obs_dtype)
    scalar_f = FieldSpec(shape=(), dtype=np.float32)
    return {
        "obs": obs,
        "action": FieldSpec(shape=(), dtype=np.int64),
        "reward": scalar_f,
        "discount": scalar_f,
        "next_obs": obs,
        "reward_1": scalar_f,
        "discount_1": scalar_f,
        "next_obs_1": obs,
        "is_demo": FieldSpec(shape=(), dtype=np.bool_),
        "imitate": FieldSpec(shape=(), dtype=np.bool_),
        "episode": FieldSpec(shape=(), dtype=np.int64),
    }


# --------------------------------------------------------------------------- validation


def _structural_problems(d: Demonstrations) -> list[str]:
    """Every way the arrays disagree with each other or with the metadata (empty if none)."""
    p: list[str] = []
    meta = d.meta
    for key in ("env_id", "observation_space", "action_space", "episode_returns"):
        if key not in meta:
            p.append(f"metadata lacks {key!r}")
    for key in ("episode_lengths", "episode_seeds", "source", "created"):
        if key not in meta:
            p.append(f"metadata lacks {key!r}")
    if p:
        return p
    try:
        obs_shape, obs_dtype, n_act = d.obs_shape, d.obs_dtype, d.num_actions
    except (KeyError, TypeError, ValueError) as exc:
        return [f"metadata observation_space/action_space unreadable: {exc!r}"]
    t = d.action.shape[0] if d.action.ndim == 1 else -1
    if t < 1:
        return [f"action must be 1-D with at least one step, got shape {d.action.shape}"]
    for name in ("reward", "terminated", "truncated", "episode_id"):
        arr = getattr(d, name)
        if arr.shape != (t,):
            p.append(f"{name} has shape {arr.shape}, expected ({t},) like action")
    if d.obs.shape != (t, *obs_shape):
        p.append(f"obs has shape {d.obs.shape}, expected {(t, *obs_shape)}")
    if d.obs.dtype != obs_dtype:
        p.append(f"obs has dtype {d.obs.dtype}, metadata says {obs_dtype}")
    if d.final_obs.ndim < 1 or d.final_obs.shape[1:] != obs_shape:
        p.append(f"final_obs has shape {d.final_obs.shape}, expected (E, *{obs_shape})")
    if d.final_obs.dtype != obs_dtype:
        p.append(f"final_obs has dtype {d.final_obs.dtype}, metadata says {obs_dtype}")
    if d.action.dtype.kind not in "iu":
        p.append(f"action has dtype {d.action.dtype}, expected an integer dtype")
    elif (d.action < 0).any() or (d.action >= n_act).any():
        bad = np.flatnonzero((d.action < 0) | (d.action >= n_act))
        p.append(f"action outside [0, {n_act}) at steps {bad[:5].tolist()}")
    for name in ("terminated", "truncated"):
        if getattr(d, name).dtype != np.bool_:
            p.append(f"{name} has dtype {getattr(d, name).dtype}, expected bool")
    if d.reward.dtype.kind != "f" or not np.isfinite(d.reward).all():
        p.append("reward must be a finite float array")
    if p:
        return p
    e = d.final_obs.shape[0]
    lengths = np.asarray(meta["episode_lengths"])
    for key in ("episode_lengths", "episode_returns", "episode_seeds"):
        if len(meta[key]) != e:
            p.append(f"metadata {key} has {len(meta[key])} entries, final_obs has {e} episodes")
    if p:
        return p
    if (lengths < 1).any() or int(lengths.sum()) != t:
        p.append(f"episode_lengths {lengths.tolist()[:10]} must be >= 1 and sum to {t} steps")
        return p
    expected_ids = np.repeat(np.arange(e, dtype=np.int64), lengths)
    if not np.array_equal(d.episode_id, expected_ids):
        bad = int(np.flatnonzero(d.episode_id != expected_ids)[0])
        p.append(
            f"episode_id must be 0..{e - 1} in contiguous blocks of episode_lengths; "
            f"step {bad} has {int(d.episode_id[bad])}, expected {int(expected_ids[bad])}"
        )
        return p
    ended = d.terminated | d.truncated
    ends = np.cumsum(lengths) - 1
    if not ended[ends].all():
        bad_ep = np.flatnonzero(~ended[ends])
        p.append(f"episodes {bad_ep[:5].tolist()} do not end with terminated or truncated")
    inner = np.ones(t, dtype=bool)
    inner[ends] = False
    if (ended & inner).any():
        bad_step = np.flatnonzero(ended & inner)
        p.append(f"terminated/truncated set before an episode's last step at {bad_step[:5]}")
    sums = np.add.reduceat(d.reward.astype(np.float64), np.concatenate([[0], ends[:-1] + 1]))
    returns = np.asarray(meta["episode_returns"], dtype=np.float64)
    if not np.allclose(sums, returns, rtol=1e-6, atol=1e-6):
        bad_ep = np.flatnonzero(~np.isclose(sums, returns, rtol=1e-6, atol=1e-6))
        p.append(
            f"episode_returns disagree with the summed rewards for episodes {bad_ep[:5].tolist()}"
        )
    return p


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


# --------------------------------------------------------------------------- I/O


def write_demos(path: str | os.PathLike[str], demos: Demonstrations) -> Path:
    """Write ``demos`` to ``path`` (a ``.npz``) atomically; returns the path written.

    The archive is written to a temporary file in the same directory, fsynced, then moved over
    ``path`` with ``os.replace``: a reader sees the old file or the complete new one, and a failed
    write (full disk, exception, kill) leaves no partial file at ``path``.

    Raises:
        ReplayError: ``demos`` is malformed (nothing is written then).
    """
    demos.check()
    path = Path(path)
    if path.suffix != ".npz":
        raise ReplayError(f"demonstration files end in .npz, got {str(path)!r}")
    meta_bytes = json.dumps(demos.meta, allow_nan=False, sort_keys=True).encode("utf-8")
    arrays = {
        "obs": demos.obs,
        "action": demos.action,
        "reward": demos.reward,
        "terminated": demos.terminated,
        "truncated": demos.truncated,
        "episode_id": demos.episode_id,
        "final_obs": demos.final_obs,
        "meta": np.frombuffer(meta_bytes, dtype=np.uint8),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        # Also on KeyboardInterrupt: never leave the temp file behind.
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_demos(
    path: str | os.PathLike[str],
    expect_env_id: str | None = None,
    expect_obs_shape: Sequence[int] | None = None,
    expect_obs_dtype: np.dtype | type | str | None = None,
    expect_num_actions: int | None = None,
) -> Demonstrations:
    """Read and validate a demonstration file; optionally check it against an environment.

    Raises:
        ReplayError: missing/unreadable file, object arrays (pickle is never allowed), missing
            arrays, bad metadata, unknown format or a newer format version, or inconsistent
            arrays -- each message names the file and what is wrong.
        ConfigError: the file is well-formed but does not match the expectations; the message
            lists every differing field as ``field: expected X, found Y``.
    """
    path = Path(path)
    if not path.is_file():
        raise ReplayError(f"demonstration file {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in _ARRAY_KEYS if k not in npz.files]
            if missing:
                raise ReplayError(
                    f"{str(path)!r} is not a demonstration file: arrays {missing} are missing "
                    f"(found {sorted(npz.files)}; required {list(_ARRAY_KEYS)})"
                )
            arrays = {k: npz[k] for k in _ARRAY_KEYS}
    except ReplayError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        # ValueError is also what np.load raises for an object (pickled) array.
        raise ReplayError(f"cannot read demonstration file {str(path)!r}: {exc}") from exc
    meta = _parse_meta(path, arrays.pop("meta"))
    demos = Demonstrations(meta=meta, **arrays)
    demos.check(where=f"demonstrations in {str(path)!r}")
    diffs = demos.mismatches(expect_env_id, expect_obs_shape, expect_obs_dtype, expect_num_actions)
    if diffs:
        raise ConfigError(
            f"demonstrations in {str(path)!r} do not match the environment: " + "; ".join(diffs)
        )
    return demos


def _parse_meta(path: Path, raw: np.ndarray) -> dict[str, Any]:
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ReplayError(
            f"{str(path)!r}: meta must be a 1-D uint8 array of UTF-8 JSON, got {raw.dtype} "
            f"shape {raw.shape}"
        )
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReplayError(f"{str(path)!r}: meta is not UTF-8 JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise ReplayError(f"{str(path)!r}: meta must be a JSON object, got {type(meta).__name__}")
    if meta.get("format") != DEMO_FORMAT:
        raise ReplayError(
            f"{str(path)!r}: format is {meta.get('format')!r}, expected {DEMO_FORMAT!r}"
        )
    version = meta.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= DEMO_FORMAT_VERSION:
        raise ReplayError(
            f"{str(path)!r}: format_version {version!r} is not supported; valid: "
            f"1..{DEMO_FORMAT_VERSION}"
        )
    return meta
