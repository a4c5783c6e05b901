"""What Ape-X actors send: batches of n-step transitions with their initial priorities.

An ``experience`` message carries ``obs, action, reward, discount, next_obs, priority`` (and
DQfD's 1-step fields ``reward_1, discount_1, next_obs_1`` when its 1-step loss is on), one row
per transition, with ``actor``, ``policy_version`` and ``env_steps`` in its metadata. Inboxes
check the arrays against :func:`experience_schema` before the learner (or the replay service)
sees them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rlfleet.envs.spec import EnvSpec
from rlfleet.transport.codec import Message

EXPERIENCE_KIND = "experience"
#: Transition fields of every experience message (besides ``priority``).
TRANSITION_FIELDS = ("obs", "action", "reward", "discount", "next_obs")
#: DQfD's 1-step target fields, sent when its 1-step loss is on.
ONE_STEP_FIELDS = ("reward_1", "discount_1", "next_obs_1")


def wants_one_step(config: Any) -> bool:
    """Whether transitions carry DQfD's 1-step target fields next to the n-step ones."""
    return config.dqfd.enabled and config.dqfd.resolved("one_step_weight") > 0


def experience_schema(
    obs_shape: tuple[int, ...], obs_dtype: np.dtype, one_step: bool = False
) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Arrays an experience message must carry (dtype name, per-item shape); anything else is
    rejected at the boundary, before it reaches a replay."""
    obs = (np.dtype(obs_dtype).name, tuple(obs_shape))
    schema = {
        "obs": obs,
        "next_obs": obs,
        "action": ("int64", ()),
        "reward": ("float32", ()),
        "discount": ("float32", ()),
        "priority": ("float32", ()),
    }
    if one_step:
        schema.update(reward_1=("float32", ()), discount_1=("float32", ()), next_obs_1=obs)
    return schema


def message_schema(config: Any, env: EnvSpec) -> dict[str, tuple[str, tuple[int, ...]]]:
    """The schema of this run's experience messages (the spec's ``message_schema``)."""
    return experience_schema(env.obs_shape, env.obs_dtype, wants_one_step(config))


def _finite(array: np.ndarray) -> bool:
    return array.dtype.kind not in "fc" or bool(np.isfinite(array).all())


def message_check(config: Any, env: EnvSpec) -> Callable[[Message], str]:
    """Value checks of an experience message (after its schema): finite observations, rewards
    and priorities, priorities >= 0, discounts in [0, 1], actions of the action space, and at
    most ``replay.capacity`` transitions (a larger batch would evict itself)."""
    num_actions, capacity = env.num_actions, config.replay.capacity

    def check(message: Message) -> str:
        a = message.arrays
        priority, action = a["priority"], a["action"]
        if not _finite(priority) or (priority < 0).any():
            return "priorities must be finite and >= 0"
        if ((action < 0) | (action >= num_actions)).any():
            return f"actions outside 0..{num_actions - 1}"
        if len(action) > capacity:
            return f"{len(action)} transitions exceed replay.capacity {capacity}"
        for name in ("reward", "reward_1", "obs", "next_obs", "next_obs_1"):
            if name in a and not _finite(a[name]):
                return f"non-finite {name}"
        for name in ("discount", "discount_1"):
            if name in a and not ((a[name] >= 0) & (a[name] <= 1)).all():
                return f"{name} outside [0, 1]"
        return ""

    return check
