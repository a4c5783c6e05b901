"""What Ape-X DPG actors send: batches of n-step transitions with Box actions (env units) and
their initial priorities.

A ``dpg_experience`` message carries ``obs, action, reward, discount, next_obs, priority``, one
row per transition, with ``actor``, ``policy_version`` and ``env_steps`` in its metadata. Both
transports check it against :func:`message_schema`, then :func:`message_check`'s values, before
the learner (or the replay service) sees it. A replay stores its rows as :func:`replay_fields`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rlfleet.agents.common.prioritized import transition_fields
from rlfleet.envs.spec import EnvSpec
from rlfleet.replay import FieldSpec
from rlfleet.transport.codec import Message

EXPERIENCE_KIND = "dpg_experience"


def message_schema(config: Any, env: EnvSpec) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Arrays an experience message must carry: ``(dtype name, per-item shape)``."""
    obs = (np.dtype(env.obs_dtype).name, tuple(env.obs_shape))
    scalar = ("float32", ())
    return {
        "obs": obs,
        "next_obs": obs,
        "action": ("float32", (env.action_dim,)),
        "reward": scalar,
        "discount": scalar,
        "priority": scalar,
    }


def replay_fields(env: EnvSpec) -> dict[str, FieldSpec]:
    """Replay fields of an Ape-X DPG transition: Box actions as float32 vectors."""
    return transition_fields(
        env.obs_shape, env.obs_dtype, action_shape=(env.action_dim,), action_dtype=np.float32
    )


def largest_push(config: Any) -> int:
    """The most transitions one actor message holds (its limiter's no-deadlock margin)."""
    return config.actor.push_size + config.env.envs_per_actor * config.algo.n_step


def _finite(array: np.ndarray) -> bool:
    return array.dtype.kind not in "fc" or bool(np.isfinite(array).all())


def message_check(config: Any, env: EnvSpec) -> Callable[[Message], str]:
    """Value checks after the schema: finite priorities >= 0, finite actions within the Box's
    bounds, finite rewards and observations, discounts in [0, 1], and at most
    ``replay.capacity`` transitions (a larger batch would evict itself)."""
    low, high = (np.asarray(b, np.float32) for b in env.action_bounds)
    capacity = config.replay.capacity

    def check(message: Message) -> str:
        a = message.arrays
        priority, action = a["priority"], a["action"]
        if not _finite(priority) or (priority < 0).any():
            return "priorities must be finite and >= 0"
        if not _finite(action) or ((action < low) | (action > high)).any():
            return f"actions outside the bounds [{low.tolist()}, {high.tolist()}]"
        if len(action) > capacity:
            return f"{len(action)} transitions exceed replay.capacity {capacity}"
        for name in ("reward", "obs", "next_obs"):
            if not _finite(a[name]):
                return f"non-finite {name}"
        if not ((a["discount"] >= 0) & (a["discount"] <= 1)).all():
            return "discount outside [0, 1]"
        return ""

    return check
