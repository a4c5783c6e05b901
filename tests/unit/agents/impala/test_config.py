"""IMPALA's config: run.algorithm picks it, bad keys name the valid ones, clip thresholds."""

from __future__ import annotations

import pytest

from rlfleet.agents.apex.config import ApexConfig
from rlfleet.agents.impala.config import ImpalaConfig
from rlfleet.agents.registry import config_from_dict
from rlfleet.cli.presets import build_config, describe_config
from rlfleet.config import from_dict, to_dict
from rlfleet.errors import ConfigError

T = 5


def _config(*overrides: str) -> ImpalaConfig:
    return build_config("impala-cartpole", [f"algo.unroll_length={T}", *overrides])


def test_run_algorithm_picks_the_config_class_and_presets_carry_it():
    assert isinstance(build_config("impala-cartpole", []), ImpalaConfig)
    assert isinstance(build_config("cartpole", []), ApexConfig)
    config = _config()
    assert config.run.algorithm == "impala" and config.algo.unroll_length == T
    assert config_from_dict(to_dict(config)) == config
    assert "unroll_length" in describe_config("impala-cartpole")
    assert "n_step" not in describe_config("impala-cartpole")
    with pytest.raises(ConfigError, match="run.algorithm 'a2c' is unknown; valid: apex, impala"):
        config_from_dict({"run": {"algorithm": "a2c"}})
    with pytest.raises(ConfigError, match="needs run.algorithm = 'impala'"):
        from_dict(ImpalaConfig, {"run": {"algorithm": "apex"}})


@pytest.mark.parametrize(
    "override, match",
    [
        ("learner.optimizer=sgd", "learner.optimizer 'sgd' is unknown; valid: rmsprop, adam"),
        ("algo.reduction=max", "valid: sum, mean"),
        ("kickstart.schedule=cosine", "valid: constant, linear, step"),
        ("kickstart.decay_updates=0", "kickstart.decay_updates must be >= 1, got 0"),
        ("kickstart.temperature=0", "kickstart.temperature must be > 0"),
        ("algo.unroll_length=0", "algo.unroll_length must be >= 1, got 0"),
        ("algo.n_step=3", r"unknown config key algo\.n_step"),
        ("model.torso=resnet", "valid: auto, mlp, minatar, nature"),
    ],
)
def test_bad_impala_keys_name_the_value_and_the_valid_ones(override, match):
    with pytest.raises(ConfigError, match=match):
        _config(override)


def test_zero_clip_thresholds_mean_no_clipping():
    args = _config("algo.clip_rho_threshold=0", "algo.clip_pg_rho_threshold=2.0").update_args()
    assert args["clip_rho_threshold"] is None and args["clip_pg_rho_threshold"] == 2.0
    assert args["clip_c_threshold"] == 1.0 and args["reduction"] == "mean"
