"""Kickstarting teachers (Schmitt et al. 2018): any run's checkpoint, Ape-X or IMPALA, as a frozen
``obs -> logits`` policy for an IMPALA student.

:func:`check_teacher` runs in the launcher before any process starts and imports no torch: it
pins the checkpoint folder and compares the teacher's environment with the student's from the
config saved in the checkpoint. :func:`load_teacher` loads it in the learner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlfleet.agents.common.checkpoint import check_policy_checkpoint
from rlfleet.envs.spec import EnvSpec
from rlfleet.errors import ConfigError

RECURRENT_TEACHER = (
    "kickstarting needs the teacher's policy on the student's observations, and a recurrent "
    "teacher's state along the student's trajectories is not known. Use a feed-forward teacher "
    "(model.core = 'none'); the student itself may have an LSTM core"
)


def check_teacher(path: str | Path, student: EnvSpec) -> Path:
    """The teacher's checkpoint folder (absolute), after checking that it fits ``student``'s
    environment and has no recurrent core; ConfigError / CheckpointError naming the folder."""
    folder, config = check_policy_checkpoint(path, student, "teacher")
    core = getattr(config.model, "core", "none")
    if core != "none":
        raise ConfigError(
            f"teacher {folder} has an LSTM core (model.core = {core!r}); {RECURRENT_TEACHER}"
        )
    return folder


def load_teacher(path: str | Path, temperature: float, student: EnvSpec) -> Any:
    """A frozen teacher ``obs -> logits / temperature`` for a student on ``student``'s
    environment; its own architecture comes from its checkpoint's config."""
    from rlfleet.agents.common.networks import load_network
    from rlfleet.models import is_recurrent

    loaded = load_network(path)
    if is_recurrent(loaded.net):
        raise ConfigError(
            f"teacher {loaded.checkpoint} has an LSTM core (model.core = "
            f"{loaded.config.model.core!r}); {RECURRENT_TEACHER}"
        )
    if loaded.obs_shape != student.obs_shape or loaded.num_actions != student.num_actions:
        raise ConfigError(
            f"teacher {loaded.checkpoint} ({loaded.config.env.id}) sees observations of shape "
            f"{loaded.obs_shape} and has {loaded.num_actions} actions; the student's environment "
            f"has {student.obs_shape} and {student.num_actions}"
        )
    teacher = loaded.scores(temperature)
    teacher.requires_grad_(False)
    return teacher
