"""Structural validation behind :meth:`Demonstrations.check
<rlfleet.replay.demos.format.Demonstrations.check>`: shapes, dtypes, the action range, the episode
layout and the metadata's returns and lengths, every problem named."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rlfleet.replay.demos.format import Demonstrations


def structural_problems(d: Demonstrations) -> list[str]:
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
    for name in ("obs", "final_obs"):  # a NaN observation would poison every update it meets
        arr = getattr(d, name)
        if arr.dtype.kind == "f" and arr.ndim >= 1 and not np.isfinite(arr).all():
            bad = np.flatnonzero(~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1))
            p.append(f"{name} holds NaN or infinite values at rows {bad[:5].tolist()}")
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
