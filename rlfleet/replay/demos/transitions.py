"""Replay items from demonstrations: every step with its 1-step AND n-step targets, cut at
episode ends exactly as :class:`~rlfleet.replay.nstep.NStepAccumulator` cuts them, and the replay
fields those items need."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rlfleet.errors import ReplayError
from rlfleet.replay.fields import FieldSpec

if TYPE_CHECKING:
    from rlfleet.replay.demos.format import Demonstrations


def demo_transitions(
    demos: Demonstrations,
    n: int,
    gamma: float,
    imitate_episodes: np.ndarray | Sequence[bool] | None = None,
) -> dict[str, np.ndarray]:
    """:meth:`Demonstrations.transitions <rlfleet.replay.demos.format.Demonstrations.transitions>`
    (documented there): one replay item per demonstration step."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ReplayError(f"n must be an integer >= 1, got {n!r}")
    if not (0.0 <= float(gamma) <= 1.0):
        raise ReplayError(f"gamma must be in [0, 1], got {gamma!r}")
    e = demos.num_episodes
    if imitate_episodes is None:
        imitate_ep = np.ones(e, dtype=bool)
    else:
        imitate_ep = np.asarray(imitate_episodes)
        if imitate_ep.dtype != np.bool_ or imitate_ep.shape != (e,):
            raise ReplayError(
                f"imitate_episodes must be a bool array of shape ({e},) (one per episode), "
                f"got dtype {imitate_ep.dtype} shape {imitate_ep.shape}"
            )
    next_obs = demos.next_obs()
    n_step = n_step_targets(demos, int(n), float(gamma), next_obs)
    one_step = n_step_targets(demos, 1, float(gamma), next_obs)
    return {
        "obs": demos.obs.copy(),
        "action": demos.action.astype(np.int64),
        "reward": n_step["reward"],
        "discount": n_step["discount"],
        "next_obs": n_step["next_obs"],
        "reward_1": one_step["reward"],
        "discount_1": one_step["discount"],
        "next_obs_1": one_step["next_obs"],
        "is_demo": np.ones(demos.num_steps, dtype=bool),
        "imitate": imitate_ep[demos.episode_id],
        "episode": demos.episode_id.astype(np.int64),
    }


def n_step_targets(
    demos: Demonstrations, n: int, gamma: float, next_obs: np.ndarray
) -> dict[str, np.ndarray]:
    """``reward``, ``discount`` and ``next_obs`` of every step's ``n``-step target (the
    sequence cut at the step's episode end), as :meth:`Demonstrations.transitions` documents."""
    t = np.arange(demos.num_steps, dtype=np.int64)
    last = demos.episode_ends()[demos.episode_id]  # last step of each step's episode
    m = np.minimum(n, last - t + 1)  # steps summed per item (>= 1)
    ret = np.zeros(demos.num_steps, dtype=np.float64)
    gpow = np.ones(demos.num_steps, dtype=np.float64)
    reward = demos.reward.astype(np.float64)
    # Loop over the (small) offset k, not over T: the same "ret += gpow * r; gpow *= gamma"
    # sequence NStepAccumulator runs, so float64 results agree bit for bit.
    for k in range(n):
        active = k < m
        idx = np.minimum(t + k, demos.num_steps - 1)
        ret = np.where(active, ret + gpow * reward[idx], ret)
        gpow = np.where(active, gpow * gamma, gpow)
    end = t + m - 1
    discount = gpow.astype(np.float32)
    # Only an episode's last step can carry `terminated`, so this is "terminated within m".
    discount[demos.terminated[end]] = 0.0
    return {
        "reward": ret.astype(np.float32),
        "discount": discount,
        "next_obs": next_obs[end],
    }


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
