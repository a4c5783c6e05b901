"""``rlfleet bench cluster``'s summary of start-up times (the runs themselves need Ray: the
``--ray`` e2e test covers the two-node cluster it starts)."""

from __future__ import annotations

import pytest

from benchmarks.cartpole.records import RunRecord
from benchmarks.cluster.cli import ROWS, main, startup_summary

pytestmark = pytest.mark.unit


def _rec(row: str, env_step: float | None, update: float | None) -> RunRecord:
    rec = RunRecord(row, 0, 60.0)
    rec.first_env_step_s, rec.first_update_s = env_step, update
    return rec


def test_startup_medians_per_row_skip_runs_that_did_not_report():
    records = [
        _rec(ROWS[0], 3.0, 4.0),
        _rec(ROWS[1], 9.0, 10.0),
        _rec(ROWS[0], 5.0, None),
        _rec(ROWS[1], 7.0, 8.0),
        _rec(ROWS[1], None, None),
    ]
    out = startup_summary(records)
    assert out[ROWS[0]] == {"median_first_env_step_s": 4.0, "median_first_update_s": 4.0}
    assert out[ROWS[1]] == {"median_first_env_step_s": 8.0, "median_first_update_s": 9.0}


def test_protocol_settings_are_refused_as_overrides(capsys):
    assert main(["--set", "run.seed=3"]) == 2
    assert "would change the protocol" in capsys.readouterr().out
