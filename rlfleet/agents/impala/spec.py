"""IMPALA (Espeholt et al. 2018) with V-trace, an optional LSTM core and kickstarting, as one agent
spec. Heavy modules are imported inside the factories, so this module imports no torch."""

from __future__ import annotations

from typing import Any

from rlfleet.agents.common.critic_check import check_critic_inputs
from rlfleet.agents.impala.config import ImpalaConfig
from rlfleet.agents.impala.messages import UNROLL_KIND
from rlfleet.agents.spec import AgentSpec, lazy
from rlfleet.envs.spec import EnvSpec
from rlfleet.errors import ConfigError


def check_env(config: Any, env: EnvSpec) -> None:
    """Box actions: a feed-forward network (the Gaussian head acts without a core) and no
    kickstarting (distillation is over Discrete actions). ``model.critic_inputs`` must fit the
    observations."""
    check_critic_inputs(config.model.critic_inputs, env.obs_shape, config.env.normalize_obs)
    if env.discrete:
        return
    if config.model.core != "none":
        raise ConfigError(
            f"IMPALA on {env.env_id} ({env.action_space}, continuous actions) needs a "
            f"feed-forward network; model.core = {config.model.core!r} is for Discrete actions "
            "(set model.core = 'none')"
        )
    if config.kickstart.teacher:
        raise ConfigError(
            f"kickstarting distils a teacher's Discrete action probabilities; {env.env_id} has "
            f"{env.action_space} (continuous actions): set kickstart.teacher = ''"
        )


def prepare(config: Any) -> None:
    """Pin and check a kickstarting teacher (``kickstart.teacher``) before any process starts:
    a bad path, or a teacher that does not fit the student's environment, fails here."""
    ks = config.kickstart
    if not ks.teacher:
        return
    from rlfleet.agents.impala.teacher import check_teacher
    from rlfleet.envs.spec import probe_env

    student = probe_env(config.env.id, config.env.kwargs)
    ks.teacher = str(check_teacher(ks.teacher, student))


SPEC = AgentSpec(
    name="impala",
    title="IMPALA",
    config_class=ImpalaConfig,
    message_kind=UNROLL_KIND,
    make_network=lazy("rlfleet.agents.impala.network:build_network"),
    make_acting=lazy("rlfleet.agents.impala.acting:ImpalaActing"),
    make_learner=lazy("rlfleet.agents.impala.learner:ImpalaLearner", 3),
    check_env=check_env,
    prepare=prepare,
    action_kinds=("discrete", "continuous"),
    make_eval_policy=lazy("rlfleet.agents.common.networks:head_policy"),
    preload=("rlfleet.agents.impala.acting", "rlfleet.agents.impala.learner"),
)
