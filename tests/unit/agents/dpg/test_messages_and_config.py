"""Ape-X DPG messages are checked for values (finite priorities, actions within the Box) and
the config refuses what the agent cannot do (a replay snapshot with the replay service)."""

from __future__ import annotations

import numpy as np
import pytest

from rlfleet.agents.dpg.messages import message_check
from rlfleet.cli.presets import build_config
from rlfleet.envs.spec import probe_env
from rlfleet.errors import ConfigError
from rlfleet.transport.codec import Message


def _message(n=4, **changes):
    arrays = {
        "obs": np.zeros((n, 3), np.float32),
        "next_obs": np.zeros((n, 3), np.float32),
        "action": np.zeros((n, 1), np.float32),
        "reward": np.zeros(n, np.float32),
        "discount": np.full(n, 0.9, np.float32),
        "priority": np.ones(n, np.float32),
    }
    arrays.update(changes)
    return Message(kind="dpg_experience", meta={}, arrays=arrays)


@pytest.fixture(scope="module")
def check():
    return message_check(
        build_config("dpg-pendulum", ["replay.capacity=5000"]), probe_env("Pendulum-v1")
    )


def test_good_messages_pass(check):
    assert check(_message(action=np.array([[-2.0], [2.0], [0.0], [1.5]], np.float32))) == ""


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"priority": np.array([1, np.nan, 1, 1], np.float32)}, "priorities"),
        ({"priority": np.array([1, -1, 1, 1], np.float32)}, "priorities"),
        ({"action": np.array([[0], [2.01], [0], [0]], np.float32)}, "actions outside"),
        ({"action": np.array([[0], [np.inf], [0], [0]], np.float32)}, "actions outside"),
        ({"reward": np.array([0, np.nan, 0, 0], np.float32)}, "non-finite reward"),
        ({"discount": np.array([0, 1.5, 0, 0], np.float32)}, "discount"),
    ],
)
def test_bad_values_are_named(check, changes, reason):
    assert reason in check(_message(**changes))


def test_config_refuses_bad_keys_and_replay_snapshots_with_the_replay_service():
    from rlfleet.agents.registry import spec_of
    from rlfleet.fleet.prepare import check_service

    with pytest.raises(ConfigError, match="noise_per 'x' is unknown; valid: actor, env"):
        build_config("dpg-pendulum", ["actor.noise_per=x"])
    service = ["transport.kind=redis", "transport.replay_service=true"]
    config = build_config("dpg-pendulum", service)
    check_service(config, spec_of(config))  # Ape-X DPG has the family's replay service
    snapshots = build_config("dpg-pendulum", [*service, "run.snapshot_replay=true"])
    with pytest.raises(ConfigError, match="snapshot_replay = true cannot be combined"):
        check_service(snapshots, spec_of(snapshots))


def test_a_discrete_env_is_refused_naming_the_algorithms_that_can():
    from rlfleet.agents import registry
    from rlfleet.errors import EnvError

    config = build_config("dpg-pendulum", ["env.id=CartPole-v1"])
    with pytest.raises(EnvError, match="Ape-X DPG needs continuous actions; CartPole-v1"):
        registry.spec("dpg").check(config, probe_env("CartPole-v1"))
