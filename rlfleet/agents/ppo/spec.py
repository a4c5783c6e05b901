"""PPO (Schulman et al. 2017) as an agent spec: Discrete and bounded Box actions, synchronous by
default, asynchronous (APPO) as ``algo.mode = "async"``. Heavy modules are imported inside the
factories, so this module imports no torch."""

from __future__ import annotations

from typing import Any

from rlfleet.agents.common.critic_check import check_critic_inputs
from rlfleet.agents.ppo.config import PPOConfig
from rlfleet.agents.ppo.messages import ROLLOUT_KIND, message_check
from rlfleet.agents.spec import ActorSlot, AgentSpec
from rlfleet.envs.spec import EnvSpec


def _network(config: Any, env: EnvSpec) -> Any:
    from rlfleet.agents.ppo.network import build_network

    return build_network(config, env)


def _acting(config: Any, env: EnvSpec, slot: ActorSlot, seed: int) -> Any:
    from rlfleet.agents.ppo.acting import PPOActing

    return PPOActing(config, env, slot, seed)


def _learner(config: Any, env: EnvSpec, seed: int, ends: Any) -> Any:
    from rlfleet.agents.ppo.learner import PPOLearner

    return PPOLearner(config, env, seed)


def _eval_policy(config: Any, env: EnvSpec, net: Any, seed: int) -> Any:
    from rlfleet.agents.common.networks import head_policy

    return head_policy(config, env, net, seed)


def check_env(config: Any, env: EnvSpec) -> None:
    """``model.critic_inputs`` must fit the observations."""
    check_critic_inputs(config.model.critic_inputs, env.obs_shape, config.env.normalize_obs)


SPEC = AgentSpec(
    name="ppo",
    title="PPO",
    config_class=PPOConfig,
    message_kind=ROLLOUT_KIND,
    make_network=_network,
    make_acting=_acting,
    make_learner=_learner,
    message_check=message_check,
    check_env=check_env,
    action_kinds=("discrete", "continuous"),
    make_eval_policy=_eval_policy,
    preload=("rlfleet.agents.ppo.acting", "rlfleet.agents.ppo.learner"),
)
