"""What DAgger actors send: visited states with the expert's label for each.

A ``labels`` message carries ``obs`` [N, *obs] and ``expert_action`` [N] int64, with ``actor``,
``policy_version`` (the policy that chose where to go) and ``env_steps`` in its metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rlfleet.envs.spec import EnvSpec
from rlfleet.transport.codec import Message, encode

LABELS_KIND = "labels"


def message_schema(config: Any, env: EnvSpec) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Arrays a labels message must carry; inboxes drop anything else."""
    return {
        "obs": (np.dtype(env.obs_dtype).name, tuple(env.obs_shape)),
        "expert_action": ("int64", ()),
    }


def encode_labels(
    obs: np.ndarray, expert_action: np.ndarray, actor: int | str, version: int, env_steps: int
) -> bytes:
    meta = {"actor": actor, "policy_version": version, "env_steps": env_steps}
    return encode(LABELS_KIND, {"obs": obs, "expert_action": expert_action}, meta)


def message_check(config: Any, env: EnvSpec) -> Callable[[Message], str]:
    """Value checks of a labels message: labels are actions of this environment, observations
    are finite."""
    num_actions = env.num_actions

    def check(message: Message) -> str:
        obs, labels = message.arrays["obs"], message.arrays["expert_action"]
        if ((labels < 0) | (labels >= num_actions)).any():
            return f"expert_action outside 0..{num_actions - 1}"
        if obs.dtype.kind == "f" and not np.isfinite(obs).all():
            return "non-finite obs"
        return ""

    return check
