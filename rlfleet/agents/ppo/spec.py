"""PPO (Schulman et al. 2017) as an agent spec: Discrete and bounded Box actions, synchronous by
default, asynchronous (APPO) as ``algo.mode = "async"``. Heavy modules are imported inside the
factories, so this module imports no torch."""

from __future__ import annotations

from typing import Any

from rlfleet.agents.common.critic_check import check_critic_inputs
from rlfleet.agents.ppo.config import PPOConfig
from rlfleet.agents.ppo.messages import ROLLOUT_KIND, message_check
from rlfleet.agents.spec import AgentSpec, lazy
from rlfleet.envs.spec import EnvSpec


def check_env(config: Any, env: EnvSpec) -> None:
    """``model.critic_inputs`` must fit the observations."""
    check_critic_inputs(config.model.critic_inputs, env.obs_shape, config.env.normalize_obs)


SPEC = AgentSpec(
    name="ppo",
    title="PPO",
    config_class=PPOConfig,
    message_kind=ROLLOUT_KIND,
    make_network=lazy("rlfleet.agents.ppo.network:build_network"),
    make_acting=lazy("rlfleet.agents.ppo.acting:PPOActing"),
    make_learner=lazy("rlfleet.agents.ppo.learner:PPOLearner", 3),
    message_check=message_check,
    check_env=check_env,
    action_kinds=("discrete", "continuous"),
    make_eval_policy=lazy("rlfleet.agents.common.networks:head_policy"),
    preload=("rlfleet.agents.ppo.acting", "rlfleet.agents.ppo.learner"),
)
