"""DAgger (Ross, Gordon and Bagnell, 2011) as an agent spec; behaviour cloning is the same agent
with ``dagger.beta_decay = 1``. Heavy modules are imported inside the factories, so this module
imports no torch."""

from __future__ import annotations

from typing import Any

from rlfleet.agents.dagger.config import DaggerConfig
from rlfleet.agents.dagger.messages import LABELS_KIND, message_check, message_schema
from rlfleet.agents.spec import AgentSpec, lazy


def prepare(config: Any) -> None:
    """Check the expert labels this environment's states (a scripted function is called on a
    probe batch; a checkpoint's saved config is compared) and pin a checkpoint's folder."""
    from rlfleet.agents.dagger.expert import check_expert
    from rlfleet.envs.spec import probe_env

    d = config.dagger
    d.expert = check_expert(d.expert, probe_env(config.env.id, config.env.kwargs))


SPEC = AgentSpec(
    name="dagger",
    title="DAgger",
    config_class=DaggerConfig,
    message_kind=LABELS_KIND,
    make_network=lazy("rlfleet.agents.dagger.network:build_network"),
    make_acting=lazy("rlfleet.agents.dagger.acting:DaggerActing"),
    make_learner=lazy("rlfleet.agents.dagger.learner:DaggerLearner", 3),
    message_schema=message_schema,
    message_check=message_check,
    prepare=prepare,
    preload=("rlfleet.agents.dagger.acting", "rlfleet.agents.dagger.learner"),
)
