"""The parent side of ``rlfleet bench minatar``: one run at a time in its own process (an
``rlfleet train`` run or an SB3 ``--child``), waited for and read back into a record."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.children import launch_child, output_tail, train_command
from benchmarks.minatar.protocol import (
    EVAL_EPISODES,
    EVAL_INTERVAL_S,
    FINAL_EPISODES,
    GRACE_S,
    IMPLS,
    rlfleet_settings,
    usable_cpus,
)
from benchmarks.minatar.records import Checkpoint, RunRecord, record_from_child, record_from_run

#: Seconds to wait for a killed run's output after each signal.
KILL_WAIT_S = 30.0


def run_rlfleet(
    impl: str,
    seed: int,
    game: str,
    budget_s: float,
    minutes: Sequence[float],
    *,
    eval_interval_s: float = EVAL_INTERVAL_S,
    eval_episodes: int = EVAL_EPISODES,
    final_episodes: int = FINAL_EPISODES,
    overrides: Sequence[str] = (),
    run_root: str | None = None,
) -> RunRecord:
    """One ``rlfleet train PRESET`` run in a fresh process, read back from its run folder.

    The run folder is kept under ``run_root`` when given (and whenever the run failed), removed
    otherwise.
    """
    from rlfleet.fleet.metrics import read_metrics

    preset = IMPLS[impl]
    if preset is None:
        raise ValueError(f"{impl} is not an rlfleet implementation")
    if run_root:
        Path(run_root).mkdir(parents=True, exist_ok=True)
        run_dir = tempfile.mkdtemp(prefix=f"{impl}-s{seed}-", dir=run_root)
    else:
        run_dir = tempfile.mkdtemp(prefix=f"rlfleet-bench-minatar-{impl}-")
    settings = rlfleet_settings(
        game, seed, budget_s, eval_interval_s, eval_episodes, final_episodes
    )
    cmd = train_command(preset, run_dir, settings, overrides)
    rec = RunRecord(impl, seed, budget_s, command=cmd, details={"preset": preset})
    child = launch_child(lambda _launch_unix: cmd, budget_s + GRACE_S, kill_wait_s=KILL_WAIT_S)
    rc, err = child.returncode, child.stderr
    rec.process_wall_s = round(child.wall_s, 3)
    path = Path(run_dir) / "final_eval.json"
    if not path.exists():
        rec.error = f"no final_eval.json (exit {rc}): {output_tail(err)}"
        rec.stop_reason = "error"
        rec.run_dir = run_dir
        print(f"  {impl} seed {seed}: {rec.error}; run folder kept: {run_dir}", file=sys.stderr)
        return rec
    final_eval = json.loads(path.read_text())
    try:
        rows = read_metrics(run_dir).get("env/steps_per_s", [])
    except FileNotFoundError:
        rows = []
    progress = [(wall_s, steps) for wall_s, steps, _, _ in rows]
    record_from_run(rec, final_eval, progress, minutes, eval_episodes)
    if rc != 0:
        rec.error = f"exit {rc}: {output_tail(err)}"
    if run_root or rec.error:
        rec.run_dir = run_dir
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
    return rec


def run_sb3(
    impl: str,
    seed: int,
    game: str,
    budget_s: float,
    minutes: Sequence[float],
    *,
    eval_episodes: int = EVAL_EPISODES,
    final_episodes: int = FINAL_EPISODES,
    torch_threads: int | None = None,
) -> RunRecord:
    """One SB3 run in a fresh ``--child`` process (told its launch time, for its clock)."""

    def make_cmd(launch_unix: float) -> list[str]:
        cmd = [sys.executable, "-m", "benchmarks.minatar", "--child", impl]
        cmd += ["--seed", str(seed), "--game", game, "--budget-s", repr(float(budget_s))]
        cmd += ["--checkpoints-s", *(repr(60.0 * float(m)) for m in minutes)]
        cmd += ["--eval-episodes", str(eval_episodes), "--final-episodes", str(final_episodes)]
        cmd += ["--torch-threads", str(torch_threads or usable_cpus())]
        return cmd + ["--launch-unix", repr(launch_unix)]

    rec = RunRecord(impl, seed, budget_s)
    # its evaluations are off its clock, so allow for them on top of the grace period
    child = launch_child(make_cmd, 2 * budget_s + GRACE_S, kill_wait_s=KILL_WAIT_S)
    rec.command = child.command
    rec.process_wall_s = round(child.wall_s, 3)
    lines = child.stdout.strip().splitlines()
    if child.returncode != 0 or not lines:
        rec.error = f"child failed (exit {child.returncode}): {output_tail(child.stderr)}"
        rec.stop_reason = "error"
        rec.checkpoints = [Checkpoint(minute=float(m)) for m in minutes]
        return rec
    return record_from_child(rec, json.loads(lines[-1]))
