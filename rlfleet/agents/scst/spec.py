"""Sequence-level RL as an agent spec: supervised pre-training and self-critical sequence
training (Rennie et al., 2017) of sequence models: an attentional encoder-decoder on
``Seq/G2P-v0``, a CTC text recognizer on ``OCR/Words-v0`` (the families of
:mod:`rlfleet.agents.scst.family`). Heavy modules are imported inside the factories: no torch
here."""

from __future__ import annotations

from typing import Any

from rlfleet.agents.scst.config import ScstConfig
from rlfleet.agents.scst.messages import SEQUENCES_KIND, message_check, message_schema
from rlfleet.agents.spec import AgentSpec, lazy
from rlfleet.envs.spec import EnvSpec


def _eval_policy(config: Any, env: EnvSpec, net: Any, seed: int) -> Any:
    from rlfleet.agents.scst.acting import GreedyPolicy

    return GreedyPolicy(net, env, config, seed)


def prepare(config: Any) -> None:
    """Load the task once (data and option errors before any process starts) and pin
    ``scst.init_from`` to a checkpoint folder whose task, data and model match this run's."""
    from rlfleet.agents.common.checkpoint import read_state, resolve_checkpoint
    from rlfleet.agents.scst.family import family_of
    from rlfleet.agents.scst.tasks import TASK_CHECKS
    from rlfleet.errors import ConfigError

    check = TASK_CHECKS.get(config.env.id)
    if check is None:
        family_of(config)  # the error naming the valid ids
    else:
        check(config)  # without torch: this runs in the launcher
    sc = config.scst
    if not sc.init_from:
        return
    family = family_of(config)  # the saved model's check needs the family (and torch)
    folder = resolve_checkpoint(sc.init_from).resolve()
    saved = read_state(folder).get("config", {})
    if saved.get("env", {}).get("id") != config.env.id:
        raise ConfigError(
            f"scst.init_from {str(folder)!r} trained env.id {saved.get('env', {}).get('id')!r}; "
            f"this run's is {config.env.id!r}"
        )
    family.check_init_from(config, saved, folder)
    sc.init_from = str(folder)


SPEC = AgentSpec(
    name="scst",
    title="SCST",
    config_class=ScstConfig,
    message_kind=SEQUENCES_KIND,
    make_network=lazy("rlfleet.agents.scst.family:build_network"),
    make_acting=lazy("rlfleet.agents.scst.acting:ScstActing"),
    make_learner=lazy("rlfleet.agents.scst.learner:ScstLearner", 3),
    message_schema=message_schema,
    message_check=message_check,
    make_eval_policy=_eval_policy,
    prepare=prepare,
    preload=("rlfleet.agents.scst.acting", "rlfleet.agents.scst.learner"),
)
