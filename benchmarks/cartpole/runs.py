"""The parent side of ``rlfleet bench cartpole``: one run at a time in its own process (an
``rlfleet train cartpole`` run or an SB3 ``--child``), waited for and read back into a record."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence

from benchmarks.cartpole.protocol import GRACE_S, PROTOCOL_SETTINGS
from benchmarks.cartpole.records import RunRecord, finalize, record_from_final_eval
from benchmarks.children import ChildRun, launch_child, output_tail, train_command

#: Seconds to wait for a killed run's output after each signal.
KILL_WAIT_S = 10.0


def _launch(
    make_cmd: Callable[[float], list[str]],
    cap_s: float,
    env_extra: Mapping[str, str] | None = None,
) -> ChildRun:
    """Launch one run (see :func:`~benchmarks.children.launch_child`); a run still alive
    ``GRACE_S`` after the cap is terminated with its whole process group."""
    return launch_child(make_cmd, cap_s + GRACE_S, kill_wait_s=KILL_WAIT_S, env_extra=env_extra)


def run_rlfleet(
    seed: int,
    cap_s: float,
    overrides: list[str],
    preset: str = "cartpole",
    impl: str = "rlfleet",
    protocol: dict[str, str] | None = None,
    extra_args: Sequence[str] = (),
    env_extra: Mapping[str, str] | None = None,
) -> RunRecord:
    """One ``rlfleet train PRESET`` run in a fresh process, read back from final_eval.json;
    ``protocol`` (default: CartPole's) is passed as ``--set`` before ``overrides``, then
    ``extra_args`` (e.g. ``--ray ADDRESS``); ``env_extra`` joins the child's environment."""
    run_dir = tempfile.mkdtemp(prefix=f"rlfleet-bench-{preset}-")
    fixed = PROTOCOL_SETTINGS if protocol is None else protocol
    settings = {"run.seed": str(seed), "run.max_seconds": str(cap_s), **fixed}
    cmd = train_command(preset, run_dir, settings, overrides) + list(extra_args)
    rec = RunRecord(impl, seed, cap_s, command=cmd)
    child = _launch(lambda _launch_unix: cmd, cap_s, env_extra)
    launch = child.launch_unix
    rec.process_wall_s = round(child.wall_s, 3)
    path = os.path.join(run_dir, "final_eval.json")
    if not os.path.exists(path):
        rec.error = f"no final_eval.json (exit {child.returncode}): {output_tail(child.stderr)}"
        rec.stop_reason = "error"
        finalize(rec, None, launch)
        print(f"  {impl} seed {seed}: {rec.error}; run folder kept: {run_dir}", file=sys.stderr)
        return rec
    with open(path) as f:
        fe = json.load(f)
    shutil.rmtree(run_dir, ignore_errors=True)
    return record_from_final_eval(rec, fe, launch)


def run_sb3(impl: str, seed: int, cap_s: float, module: str = "benchmarks.cartpole") -> RunRecord:
    """One SB3 run in a fresh ``--child`` process of ``module`` (told its launch time, for the
    cap)."""

    def make_cmd(launch_unix: float) -> list[str]:
        cmd = [sys.executable, "-m", module, "--child", impl]
        cmd += ["--seed", str(seed), "--max-seconds", str(cap_s)]
        return cmd + ["--launch-unix", repr(launch_unix)]

    rec = RunRecord(impl, seed, cap_s)
    child = _launch(make_cmd, cap_s)
    rec.command, launch = child.command, child.launch_unix
    rec.process_wall_s = round(child.wall_s, 3)
    lines = child.stdout.strip().splitlines()
    if child.returncode != 0 or not lines:
        rec.error = f"child failed (exit {child.returncode}): {output_tail(child.stderr)}"
        rec.stop_reason = "error"
        return finalize(rec, None, launch)
    res = json.loads(lines[-1])
    rec.stop_reason = res["stop_reason"]
    rec.env_steps = res["env_steps"]
    rec.evaluations = res["evaluations"]
    rec.eval_s = res["eval_s"]
    rec.curve = res["curve"]
    rec.env_steps_to_solve = res["env_steps_to_solve"]
    return finalize(rec, res["solved_at_unix"], launch)
