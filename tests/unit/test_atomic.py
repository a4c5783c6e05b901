"""The atomic-write helper: files and folders appear whole or not at all, and what an
interrupted write left behind is removed on the next start (only when its writer is gone)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rlfleet import atomic


def test_a_file_is_replaced_whole_and_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "final_eval.json"
    atomic.write_text(target, "old")
    atomic.write_text(target, "new")
    assert target.read_text() == "new"

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space"):
        atomic.write_text(target, "half")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final_eval.json"]


def test_a_folder_is_renamed_into_place_or_removed(tmp_path):
    final = tmp_path / "ckpt-0000000010"
    with atomic.folder(final) as tmp:
        (tmp / "state.json").write_text("{}")
        assert not final.exists()
    assert (final / "state.json").read_text() == "{}"
    with pytest.raises(RuntimeError), atomic.folder(tmp_path / "ckpt-0000000020") as tmp:
        (tmp / "model.safetensors").write_bytes(b"partial")
        raise RuntimeError("killed mid-write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-0000000010"]


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


def test_stale_temporaries_of_dead_writers_are_cleaned_live_ones_kept(tmp_path):
    dead = _dead_pid()
    leftovers = [
        f".tmp-{dead}-0badc0de-ckpt-0000000100",  # a checkpoint folder of a killed learner
        ".tmp-ckpt-0000000050-1234",  # the same from an older rlfleet
        ".final_eval.json.tmp",
        ".evaluations.json.tmp",
        ".latest.tmp-999999",
    ]
    for name in leftovers:
        if "ckpt" in name:
            (tmp_path / name).mkdir()
            (tmp_path / name / "model.safetensors").write_bytes(b"x" * 100)
        else:
            (tmp_path / name).write_text("half")
    live = atomic.temp_sibling(tmp_path / "metrics.csv")  # this process is writing it now
    live.write_text("in progress")
    keep = ["metrics.csv", "config.toml", ".hidden-user-file", "ckpt-0000000010"]
    for name in keep[:-1]:
        (tmp_path / name).write_text("mine")
    (tmp_path / keep[-1]).mkdir()

    removed = atomic.clean_stale(tmp_path)

    assert sorted(p.name for p in removed) == sorted(leftovers)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*keep, live.name])
    assert atomic.clean_stale(tmp_path / "missing") == []
