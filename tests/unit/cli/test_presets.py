"""Every preset checkpoints periodically: a crash, a kill or a full disk loses at most
``run.checkpoint_interval_s`` of a run, never all of it."""

from __future__ import annotations

import pytest

from rlfleet.cli.presets import build_config, preset_names


@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_checkpoints_periodically(preset):
    interval = build_config(preset, []).run.checkpoint_interval_s
    assert 0 < interval <= 600, f"{preset}: run.checkpoint_interval_s = {interval}"


CONTINUOUS = [p for p in preset_names() if p.startswith(("dpg-", "ppo-"))]


@pytest.mark.parametrize("preset", CONTINUOUS)
def test_every_dpg_and_ppo_preset_accepts_its_environment(preset):
    """The agent's refusals (action space, observations, randomization) pass for its preset;
    the MuJoCo ones need the ``mujoco`` extra."""
    from rlfleet.agents import registry
    from rlfleet.envs.spec import probe_env

    config = build_config(preset, [])
    if config.env.id.endswith("-v5"):
        pytest.importorskip("mujoco")
    registry.spec_of(config).check(config, probe_env(config.env.id, config.env.kwargs))
