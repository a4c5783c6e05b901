"""Faults of the local fleet, from the outside (``rlfleet train`` as a process):

* the launcher SIGKILLed: the learner notices its broken link and still publishes and saves;
* Ctrl-C twice: the second press does not kill the roles before the learner has saved;
* a crash after a periodic checkpoint, then ``--resume``: the metric rows written after the
  checkpoint are dropped, so wall_s, env_steps and updates never step back.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tiny_budget import TINY

from rlfleet.agents.common.checkpoint import check_resumable, latest_checkpoint, read_state
from rlfleet.cli.main import main

LONG = ["run.total_env_steps=0", "run.max_seconds=120", "run.checkpoint_interval_s=0"]
CKPT_2S = "run.checkpoint_interval_s=2"


def _sets(*extra: str) -> list[str]:
    return [a for s in [*TINY, *extra] for a in ("--set", s)]


def _start(run_dir: Path, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "rlfleet.cli.main", "train", "cartpole"]
    argv += ["--run-dir", str(run_dir), "--quiet", *_sets(*extra)]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def _rows(run_dir: Path) -> list[list[str]]:
    path = run_dir / "metrics.csv"
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return [row for row in csv.reader(fh) if len(row) == 5][1:]


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _learning(run_dir: Path) -> bool:
    return any(int(row[2]) >= 20 for row in _rows(run_dir))


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and every role it started
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)
    # the roles too: one still finishing a write (a checkpoint's rename) when the kill came
    # must be gone before the test reads what the run left
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)


def test_a_killed_launcher_does_not_lose_the_run(tmp_path):
    run_dir = tmp_path / "run"
    proc = _start(run_dir, *LONG)
    try:
        assert _wait_for(lambda: _learning(run_dir), 90), "the fleet never started learning"
        os.kill(proc.pid, signal.SIGKILL)  # the launcher only: its roles live on
        proc.wait(timeout=10)
        assert _wait_for(lambda: latest_checkpoint(run_dir) is not None, 30), (
            "the learner died on the broken link before saving"
        )
        ckpt = latest_checkpoint(run_dir)
        state = check_resumable(ckpt)  # complete, and resumable
        assert state["counters"]["updates"] >= 20
    finally:
        _kill_group(proc)


def test_a_second_ctrl_c_does_not_kill_the_roles_before_they_save(tmp_path):
    run_dir = tmp_path / "run"
    proc = _start(run_dir, *LONG)
    try:
        assert _wait_for(lambda: _learning(run_dir), 90), "the fleet never started learning"
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)  # shutting down: the learner has not saved yet
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err[-2000:]
        assert "already stopping" in err
        final = json.loads((run_dir / "final_eval.json").read_text())
        assert final["stop_reason"] == "interrupted"
        ckpt = latest_checkpoint(run_dir)
        assert ckpt is not None and final["checkpoint"] == str(ckpt)
        assert read_state(ckpt)["counters"]["updates"] == final["updates"] >= 20
    finally:
        _kill_group(proc)


def test_resumed_curves_continue_exactly_after_a_crash(tmp_path):
    run_dir = tmp_path / "run"
    proc = _start(run_dir, "run.total_env_steps=0", "run.max_seconds=120", CKPT_2S)
    try:
        assert _wait_for(lambda: latest_checkpoint(run_dir) is not None, 90)
        first = latest_checkpoint(run_dir)
        # a crash a while after that checkpoint: rows written after it are in metrics.csv
        assert _wait_for(lambda: latest_checkpoint(run_dir) != first, 30)
        time.sleep(1.5)
    finally:
        _kill_group(proc)  # everything at once: nothing saves on the way out
    ckpt = latest_checkpoint(run_dir)
    elapsed = float(read_state(ckpt)["counters"]["elapsed_s"])
    before = {tuple(row) for row in _rows(run_dir)}
    after_ckpt = {row for row in before if float(row[0]) > elapsed}
    assert after_ckpt, "the crash came after rows past the checkpoint (else nothing to test)"

    argv = ["train", "--resume", str(run_dir), "--quiet", "--in-process"]
    assert main([*argv, "--set", f"run.max_seconds={elapsed + 6:.1f}"]) == 0
    rows = _rows(run_dir)
    now = {tuple(row) for row in rows}
    assert not (after_ckpt & now), "rows written after the checkpoint were dropped"
    assert before - after_ckpt <= now, "rows up to the checkpoint were kept"
    for column in (0, 1, 2):  # wall_s, env_steps, updates
        values = [float(row[column]) for row in rows]
        assert values == sorted(values), f"column {column} steps back"
    assert float(rows[-1][0]) >= elapsed + 6 - 0.5, "the resumed run continued the clock"
