"""The run folder before a fleet starts: clear refusals (a file, a folder that cannot be
written, a finished run reused without --resume), leftovers of interrupted writes removed, and
on resume the metric rows after the checkpoint dropped so the curves continue exactly."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from rlfleet.errors import ConfigError
from rlfleet.fleet import rundir
from rlfleet.fleet.metrics import MetricsWriter, read_metrics, truncate_metrics


def test_a_file_where_the_run_folder_should_be_is_refused(tmp_path):
    target = tmp_path / "run"
    target.write_text("not a folder")
    with pytest.raises(ConfigError, match="is a file, not a folder; pick another --run-dir"):
        rundir.check_run_dir(target, resuming=False)


def test_a_folder_that_cannot_be_written_is_refused_with_the_reason(tmp_path, monkeypatch):
    def denied(self, *args, **kwargs):  # what a read-only folder does (tests may run as root)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "write_bytes", denied)
    with pytest.raises(ConfigError, match="cannot write to run folder .*Permission denied"):
        rundir.make_run_dir(tmp_path / "run")


@pytest.mark.parametrize("leftover", ["final_eval.json", "metrics.csv", "checkpoints"])
def test_a_folder_holding_a_run_is_refused_without_resume(tmp_path, leftover):
    run = tmp_path / "run"
    run.mkdir()
    if leftover == "checkpoints":
        (run / "checkpoints" / "ckpt-0000000100").mkdir(parents=True)
    else:
        (run / leftover).write_text("x")
    with pytest.raises(ConfigError, match=rf"--resume {run}, or .*another --run-dir"):
        rundir.check_run_dir(run, resuming=False)
    rundir.check_run_dir(run, resuming=True)  # continuing it is what --resume is for


def test_an_empty_or_fresh_folder_is_fine_checked_without_a_write_then_made(tmp_path):
    (tmp_path / "empty").mkdir()
    rundir.check_run_dir(tmp_path / "empty", resuming=False)
    fresh = tmp_path / "new" / "run"
    rundir.check_run_dir(fresh, resuming=False)
    assert not fresh.exists(), "checking writes nothing"
    assert rundir.make_run_dir(fresh) and not rundir.make_run_dir(fresh)
    assert list(fresh.iterdir()) == []
    rundir.remove_if_unused(fresh)
    assert not fresh.exists()


def test_stale_temporaries_are_cleaned_in_the_folder_and_its_checkpoints(tmp_path):
    (tmp_path / "checkpoints" / ".tmp-ckpt-0000000300-4242").mkdir(parents=True)
    (tmp_path / ".final_eval.json.tmp").write_text("{")
    removed = rundir.clean_run_dir(tmp_path)
    assert sorted(p.name for p in removed) == [".final_eval.json.tmp", ".tmp-ckpt-0000000300-4242"]


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_rows_after_the_checkpoint_are_dropped_and_a_cut_row_too(tmp_path):
    writer = MetricsWriter(tmp_path, tensorboard=False)
    for wall in (1.0, 2.0, 3.0, 4.0, 5.0):
        writer.write(wall, int(wall * 100), int(wall * 10), {"learner/loss": wall})
    writer.close()
    with open(tmp_path / "metrics.csv", "a") as fh:
        fh.write("6.0,600,60,learner/lo")  # the launcher was killed mid-row
    assert truncate_metrics(tmp_path, 3.0) == 3
    assert [r[0] for r in _rows(tmp_path / "metrics.csv")] == ["wall_s", "1.0", "2.0", "3.0"]
    assert truncate_metrics(tmp_path, 3.0) == 0
    # a resumed run appends after the kept rows: wall_s never steps back
    writer = MetricsWriter(tmp_path, tensorboard=False)
    writer.write(3.5, 350, 35, {"learner/loss": 0.1})
    writer.close()
    walls = [w for w, *_ in read_metrics(tmp_path)["learner/loss"]]
    assert walls == sorted(walls) == [1.0, 2.0, 3.0, 3.5]
    assert truncate_metrics(tmp_path / "none", 1.0) == 0
