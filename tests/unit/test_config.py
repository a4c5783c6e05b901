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
        ("learner.batch_size=0", "learner.batch_size must be >= 1, got 0"),
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


def _numeric_fields():
    import dataclasses
    import typing

    from rlfleet.agents import registry

    for algorithm in registry.names():
        config_cls = registry.config_class(algorithm)
        for section in dataclasses.fields(config_cls):
            section_cls = typing.get_type_hints(config_cls)[section.name]
            hints = typing.get_type_hints(section_cls)
            for f in dataclasses.fields(section_cls):
                hint = hints[f.name]
                if hint in (int, float) or typing.get_args(hint)[:1] in ((int,), (float,)):
                    yield algorithm, section.name, f


#: Numbers any value of which is meaningful (a solve threshold is a return: any sign).
UNBOUNDED = {("eval", "solve_threshold")}


def test_every_numeric_key_declares_its_valid_range():
    missing = [
        f"{algorithm}: {section}.{f.name}"
        for algorithm, section, f in _numeric_fields()
        if not f.metadata.get("range") and (section, f.name) not in UNBOUNDED
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("learner.lr=nan", "learner.lr: expected a finite number, got nan"),
        ("run.max_seconds=nan", "expected a finite number"),
        ("run.max_seconds=inf", "expected a finite number"),
        ("model.hidden=[-5]", r"model.hidden must be >= 1, got \[-5\]"),
        ("replay.alpha=-1", "replay.alpha must be >= 0, got -1.0"),
        ("run.seed=-1", "run.seed must be >= 0, got -1"),
        ("env.max_episode_steps=-1", "env.max_episode_steps must be >= 0, got -1"),
        ("actor.epsilon=5", r"actor.epsilon must be in \[0, 1\], got 5.0"),
        ("replay.learning_starts=200000", "exceeds replay.capacity 100000"),
        ("learner.batch_size=200000", "exceeds replay.capacity"),
        ("dqfd.margin=-0.5", "dqfd.margin must be >= 0 .or -1"),
        ("eval.solve_threshold=nan", "expected a finite number"),
    ],
)
def test_values_that_used_to_pass_validation_are_refused_before_anything_starts(override, match):
    with pytest.raises(ConfigError, match=match):
        build_config("cartpole", [override])
