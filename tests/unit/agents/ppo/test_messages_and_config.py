"""Bad rollouts are refused with the reason (both transports apply the check), bad PPO configs
name the key and the valid values, and environments PPO cannot act in are refused before any
process starts, naming the algorithms that can."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from fakes import ppo_rollouts

from rlfleet.agents import registry
from rlfleet.agents.ppo.messages import ROLLOUT_KIND, encode_rollout, message_check
from rlfleet.agents.ppo.network import build_network
from rlfleet.cli.presets import build_config
from rlfleet.envs.spec import EnvSpec, probe_env
from rlfleet.errors import ConfigError, EnvError
from rlfleet.transport.codec import decode
from rlfleet.transport.schema import MessageGate

pytestmark = pytest.mark.usefixtures("one_torch_thread")

T, K = 4, 2


def _config(*overrides: str):
    sets = [f"algo.rollout_length={T}", f"env.envs_per_actor={K}", "model.hidden=[8]"]
    return build_config("ppo-pendulum", [*sets, *overrides])


def _rollout():
    config = _config()
    env = probe_env("Pendulum-v1")
    batch, _ = ppo_rollouts(config, build_network(config, env), "Pendulum-v1", limit=3)
    batch["policy_version"] = np.array(1, np.int64)
    return config, env, batch


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda r: r.pop("log_prob"), "missing arrays ['log_prob']"),
        (lambda r: r.update(action=r["action"].astype(np.float64)), "action is float64"),
        (lambda r: r["log_prob"].__setitem__((0, 0), np.nan), "non-finite"),
        (lambda r: r["discount"].__setitem__((0, 0), 2.0), "discounts outside [0, 1]"),
        (lambda r: r.update(obs=r["obs"][:-1]), "obs has shape"),
        (lambda r: r["truncated"].__setitem__((0, 0), not r["truncated"][0, 0]), "truncated"),
    ],
)
def test_the_gate_drops_bad_rollouts_with_the_reason(change, reason):
    config, env, rollout = _rollout()
    gate = MessageGate({ROLLOUT_KIND}, check=message_check(config, env))
    assert gate.admit(encode_rollout(rollout, 0)) is not None
    change(rollout)
    assert gate.admit(encode_rollout(rollout, 0)) is None
    assert gate.rejected_by_reason["content"] == 1 and gate.rejected == 1
    assert reason in message_check(config, env)(decode(encode_rollout(rollout, 0)))


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("algo.mode=lockstep", "algo.mode 'lockstep' is unknown; valid: sync, async"),
        ("model.squash=sigmoid", "model.squash 'sigmoid' is unknown; valid: tanh, clip"),
        ("model.activation=gelu", "model.activation 'gelu' is unknown; valid: relu, tanh"),
        ("learner.lr_schedule=cosine", "learner.lr_schedule 'cosine' is unknown"),
        ("algo.clip_eps=1.5", r"algo.clip_eps must be in \(0, 1\)"),
    ],
)
def test_bad_config_values_name_the_valid_ones(override, match):
    with pytest.raises(ConfigError, match=match):
        _config(override)


def test_a_linear_schedule_needs_a_horizon():
    with pytest.raises(ConfigError, match="needs learner.anneal_env_steps or run.total_env_steps"):
        _config("learner.lr_schedule=linear", "run.total_env_steps=0")


def _env(space: gym.Space) -> EnvSpec:
    return EnvSpec("Custom-v0", (3,), np.dtype(np.float32), space)


def test_action_spaces_are_checked_naming_the_algorithms_that_can():
    ppo, apex = registry.spec("ppo"), registry.spec("apex")
    ppo.check(_config(), _env(gym.spaces.Box(-1.0, 1.0, (2,))))
    ppo.check(_config(), _env(gym.spaces.Discrete(3)))
    with pytest.raises(
        EnvError, match=r"Ape-X DQN needs discrete actions.*handle them .*impala, ppo"
    ):
        apex.check(build_config("cartpole", []), _env(gym.spaces.Box(-1.0, 1.0, (2,))))
    with pytest.raises(
        EnvError, match=r"infinite bounds.*continuous \(bounded 1-D Box\): impala, ppo"
    ):
        ppo.check(_config(), _env(gym.spaces.Box(-np.inf, np.inf, (2,))))
    with pytest.raises(EnvError, match=r"MultiDiscrete space.*discrete \(Discrete\): apex, impala"):
        ppo.check(_config(), _env(gym.spaces.MultiDiscrete([3, 3])))
    with pytest.raises(EnvError, match="a Dict space"):
        ppo.check(_config(), _env(gym.spaces.Dict({"a": gym.spaces.Discrete(2)})))
    impala = registry.spec("impala")
    lstm = build_config("impala-cartpole", ["model.core=lstm"])
    with pytest.raises(ConfigError, match="needs a feed-forward network"):
        impala.check(lstm, _env(gym.spaces.Box(-1.0, 1.0, (1,))))


def test_evaluation_randomization_is_checked_against_the_env():
    with pytest.raises(ConfigError, match="eval.randomize.size: Pendulum-v1 has no parameter"):
        registry.spec("ppo").check(
            _config("eval.randomize={size = [1, 2]}"), probe_env("Pendulum-v1")
        )
    with pytest.raises(ConfigError, match="env.randomize.size"):
        _config("env.randomize={size = [1, 2]}")
