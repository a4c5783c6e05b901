"""Typed config: presets, overrides, and clear errors for unknown or ill-typed keys."""

from __future__ import annotations

import pytest

from rlfleet.agents.apex.config import ApexConfig
from rlfleet.agents.registry import config_from_dict
from rlfleet.cli.presets import build_config, preset_names
from rlfleet.config import dumps_toml, from_dict, load_toml, parse_override, to_dict
from rlfleet.errors import ConfigError


def test_every_preset_builds_and_round_trips_through_toml(tmp_path):
    assert {"cartpole", "minatar-breakout", "minatar-space-invaders", "pong"} <= set(preset_names())
    for name in preset_names():
        config = build_config(name, [])
        path = tmp_path / f"{name}.toml"
        path.write_text(dumps_toml(to_dict(config)))
        assert config_from_dict(load_toml(path)) == config


def test_overrides_are_typed():
    config = build_config(
        "cartpole", ["learner.lr=0.01", "model.hidden=[32, 16]", "env.id=Acrobot-v1"]
    )
    assert config.learner.lr == 0.01
    assert config.model.hidden == (32, 16)
    assert config.env.id == "Acrobot-v1"
    assert parse_override("run.stop_on_solve=true") == ("run", "stop_on_solve", True)


@pytest.mark.parametrize(
    "override, match",
    [
        ("learner.lrr=0.1", r"unknown config key learner\.lrr\. Did you mean 'lr'"),
        ("lerner.lr=0.1", r"unknown config section 'lerner'.*Valid: actor, algo"),
        ("learner.batch_size=big", "expected an integer"),
        ("learner.batch_size=0", "must be > 0"),
        ("run.stop_on_solve=3", "expected true or false"),
        ("replay.kind=ring", "valid: prioritized, uniform"),
        ("algo.gamma=1.5", r"\[0, 1\]"),
        ("nonsense", "section.key=value"),
    ],
)
def test_bad_overrides_name_the_key_and_the_valid_ones(override, match):
    with pytest.raises(ConfigError, match=match):
        build_config("cartpole", [override])


def test_unknown_preset_lists_valid_presets():
    with pytest.raises(
        ConfigError, match="unknown preset 'cartpol'.*Did you mean cartpole.*Valid presets"
    ):
        build_config("cartpol", [])


def test_env_kwargs_table_accepts_scalars_and_lists_and_round_trips(tmp_path):
    config = build_config(
        "netsim-calibrated",
        ['env.kwargs={scenario = "aws_korea_to_china", reward_coeffs = [1.0, 0.2, 0.5]}'],
    )
    assert config.env.kwargs == {"scenario": "aws_korea_to_china", "reward_coeffs": (1.0, 0.2, 0.5)}
    path = tmp_path / "c.toml"
    path.write_text(dumps_toml(to_dict(config)))
    assert from_dict(ApexConfig, load_toml(path)).env.kwargs == config.env.kwargs
    with pytest.raises(ConfigError, match="must be a string, number, bool or a list"):
        build_config("cartpole", ["env.kwargs={a = {b = 1}}"])
