"""Every preset checkpoints periodically: a crash, a kill or a full disk loses at most
``run.checkpoint_interval_s`` of a run, never all of it."""

from __future__ import annotations

import pytest

from rlfleet.cli.presets import build_config, preset_names


@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_checkpoints_periodically(preset):
    interval = build_config(preset, []).run.checkpoint_interval_s
    assert 0 < interval <= 600, f"{preset}: run.checkpoint_interval_s = {interval}"
