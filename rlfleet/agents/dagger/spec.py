"""DAgger (Ross, Gordon and Bagnell, 2011) as an agent spec; behaviour cloning is the same agent
with ``dagger.beta_decay = 1``. Heavy modules are imported inside the factories, so this module
imports no torch."""

from __future__ import annotations

from typing import Any

from rlfleet.agents.dagger.config import DaggerConfig
from rlfleet.agents.dagger.messages import LABELS_KIND, message_check, message_schema
from rlfleet.agents.spec import ActorSlot, AgentSpec
from rlfleet.envs.spec import EnvSpec


def _network(config: Any, env: EnvSpec) -> Any:
    from rlfleet.agents.dagger.network import build_network

    return build_network(config, env)


def _acting(config: Any, env: EnvSpec, slot: ActorSlot, seed: int) -> Any:
    from rlfleet.agents.dagger.acting import DaggerActing

    return DaggerActing(config, env, slot, seed)


def _learner(config: Any, env: EnvSpec, seed: int, ends: Any) -> Any:
    from rlfleet.agents.dagger.learner import DaggerLearner

    return DaggerLearner(config, env, seed)


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
    make_network=_network,
    make_acting=_acting,
    make_learner=_learner,
    message_schema=message_schema,
    message_check=message_check,
    prepare=prepare,
    preload=("rlfleet.agents.dagger.acting", "rlfleet.agents.dagger.learner"),
)
