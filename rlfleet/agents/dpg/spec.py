"""Ape-X DPG (Horgan et al. 2018) as an agent spec: the Ape-X fleet (prioritized replay with
actor-computed initial priorities, n-step returns, per-actor exploration noise) with a DDPG
learner and TD3's changes. Bounded ``Box`` actions and 1-D observations. The replay may live in
the family's replay service (``transport.replay_service``, :mod:`rlfleet.agents.dpg.service`).
Heavy modules are imported inside the factories, so this module imports no torch."""

from __future__ import annotations

from typing import Any

from rlfleet.agents.common.service_spec import replay_service_spec
from rlfleet.agents.dpg.config import DPGConfig
from rlfleet.agents.dpg.messages import EXPERIENCE_KIND, message_check, message_schema
from rlfleet.agents.spec import AgentSpec, lazy
from rlfleet.envs.spec import EnvSpec
from rlfleet.errors import ConfigError


def _eval_policy(config: Any, env: EnvSpec, net: Any, seed: int) -> Any:
    from rlfleet.agents.dpg.network import DeterministicPolicy

    return DeterministicPolicy(net)


def check_env(config: Any, env: EnvSpec) -> None:
    """The actor and critics are MLPs: 1-D observations only."""
    if len(env.obs_shape) != 1:
        raise ConfigError(
            f"Ape-X DPG takes 1-D observations (MLP actor and critics); {env.env_id} gives "
            f"observations of shape {tuple(env.obs_shape)}"
        )


def _learner(config: Any, env: EnvSpec, seed: int, ends: Any) -> Any:
    from rlfleet.agents.dpg.learner import DPGLearner

    return DPGLearner(config, env, seed, store=ends.store)


SPEC = AgentSpec(
    name="dpg",
    title="Ape-X DPG",
    config_class=DPGConfig,
    message_kind=EXPERIENCE_KIND,
    make_network=lazy("rlfleet.agents.dpg.network:build_network"),
    make_acting=lazy("rlfleet.agents.dpg.acting:make_acting"),
    make_learner=_learner,
    message_schema=message_schema,
    message_check=message_check,
    check_env=check_env,
    action_kinds=("continuous",),
    make_eval_policy=_eval_policy,
    service=replay_service_spec(
        "rlfleet.agents.dpg.service:ReplayService", "rlfleet.agents.dpg.service:RemoteStore"
    ),
    preload=("rlfleet.agents.dpg.acting", "rlfleet.agents.dpg.learner"),
)
