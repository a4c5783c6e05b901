"""DAgger's config: the beta schedule, behaviour cloning as beta_decay = 1, refusals."""

from __future__ import annotations

import pytest

from rlfleet.agents.dagger.config import DaggerConfig
from rlfleet.cli.presets import build_config
from rlfleet.errors import ConfigError


def test_beta_starts_at_one_and_decays_per_iteration():
    d = build_config("dagger-cartpole", ["dagger.beta_decay=0.5"]).dagger
    assert [d.beta(i) for i in (1, 2, 3, 4)] == [1.0, 0.5, 0.25, 0.125]
    bc = build_config("bc-cartpole", []).dagger
    assert all(bc.beta(i) == 1.0 for i in range(1, 20)), "behaviour cloning: the expert drives"
    zero = build_config("dagger-cartpole", ["dagger.beta_decay=0"]).dagger
    assert [zero.beta(i) for i in (1, 2, 3)] == [1.0, 0.0, 0.0]


def test_presets_are_dagger_configs_whose_learner_publishes_once_per_iteration():
    config = build_config("dagger-mountaincar", ["learner.updates_per_iteration=123"])
    assert isinstance(config, DaggerConfig) and config.run.algorithm == "dagger"
    assert config.learner.publish_interval == 123
    assert config.dagger.store_capacity == config.dagger.max_labels == 5000


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (['dagger.expert=""'], "dagger.expert is required"),
        (["dagger.beta_decay=1.5"], r"beta_decay must be in \[0, 1\]"),
        (["dagger.labels_per_iteration=0"], "labels_per_iteration must be >= 1, got 0"),
        (["learner.batch_size=600"], "exceeds the first iteration's labels"),
        (["dagger.max_labels=32", "learner.batch_size=64"], "exceeds the first iteration"),
        (["dagger.capacity=100"], "would forget labels it paid for"),
        (["learner.publish_interval=5"], "unknown config key learner.publish_interval"),
    ],
)
def test_bad_values_are_named(overrides, match):
    with pytest.raises(ConfigError, match=match):
        build_config("dagger-cartpole", overrides)
