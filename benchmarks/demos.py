"""`rlfleet bench demos`: does learning from demonstrations pay? DQfD vs Ape-X DQN, same seeds.

Protocol (docs/demonstrations.md):

1. Record the demonstrations once: ``rlfleet record MountainCar-v0 --policy
   rlfleet.envs.demonstrators:mountain_car_pump --episodes 20 --seed 0``. The demonstrator's
   average is the mean return of those recorded episodes.
2. For every seed, train each variant's preset (``mountaincar`` = Ape-X DQN without
   demonstrations, ``mountaincar-dqfd``, optionally ``mountaincar-apex-dqfd``) for its env-step
   budget, each run its own ``rlfleet train`` process. The presets own every hyperparameter and
   the threshold (``eval.solve_threshold``: greedy 20-episode mean, two consecutive evaluations).
3. Report per variant: env steps to the threshold (the ``solved_at_env_steps`` of the run; a run
   that never reaches it is "not reached within its budget"), and the final 20-episode greedy
   evaluation at the end of the budget, against the demonstrator's average.

Env steps, not seconds, are the measure: they do not depend on what else runs on the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.machine import machine_info

ENV_ID = "MountainCar-v0"
DEMONSTRATOR = "rlfleet.envs.demonstrators:mountain_car_pump"
PRESETS = {"dqn": "mountaincar", "dqfd": "mountaincar-dqfd", "apex-dqfd": "mountaincar-apex-dqfd"}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="rlfleet bench demos", description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--variants", nargs="+", default=["dqn", "dqfd"], choices=list(PRESETS))
    p.add_argument("--dqn-steps", type=int, default=300_000, help="env-step budget of dqn")
    p.add_argument("--dqfd-steps", type=int, default=150_000, help="budget of the DQfD variants")
    p.add_argument("--episodes", type=int, default=20, help="demonstration episodes (20)")
    p.add_argument("--workdir", default="runs/bench-demos", help="run folders and the demo file")
    p.add_argument("--json", default=None, metavar="PATH", help="write the results here")
    return p.parse_args(argv)


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise SystemExit(f"rlfleet bench demos: `{' '.join(cmd)}` failed:\n{tail}")


def record_demos(workdir: Path, episodes: int) -> tuple[Path, list[float]]:
    from rlfleet.replay import load_demos

    path = workdir / "mountaincar-pump.npz"
    rlfleet = [sys.executable, "-m", "rlfleet.cli.main"]
    _run(
        [*rlfleet, "record", ENV_ID, "--policy", DEMONSTRATOR, "--episodes", str(episodes)]
        + ["--seed", "0", "--out", str(path)]
    )
    return path, [float(r) for r in load_demos(path).episode_returns]


def train_one(variant: str, seed: int, budget: int, demos: Path, workdir: Path) -> dict[str, Any]:
    run_dir = workdir / f"{variant}-seed{seed}"
    cmd = [sys.executable, "-m", "rlfleet.cli.main", "train", PRESETS[variant], "--quiet"]
    cmd += ["--run-dir", str(run_dir), "--set", f"run.seed={seed}"]
    cmd += ["--set", f"run.total_env_steps={budget}", "--set", "run.max_seconds=0"]
    if variant != "dqn":
        cmd += ["--set", f'dqfd.demos="{demos}"']
    start = time.time()
    _run(cmd)
    final = json.loads((run_dir / "final_eval.json").read_text())
    record = {
        "variant": variant,
        "seed": seed,
        "budget_env_steps": budget,
        "env_steps": final["env_steps"],
        "wall_s": round(time.time() - start, 1),
        "threshold_at_env_steps": final["solved_at_env_steps"],
        "final_return_mean": final["final_return_mean"],
        "run_dir": str(run_dir),
    }
    print(
        f"{variant:10s} seed {seed}: threshold at "
        f"{record['threshold_at_env_steps'] or 'not reached'} env steps, final "
        f"{record['final_return_mean']:.1f} ({record['wall_s']:.0f} s)",
        flush=True,
    )
    return record


def summarise(records: list[dict[str, Any]], demo_avg: float) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for variant in dict.fromkeys(r["variant"] for r in records):
        rs = [r for r in records if r["variant"] == variant]
        reached = [r["threshold_at_env_steps"] for r in rs if r["threshold_at_env_steps"]]
        # an unreached threshold counts as "more than the budget": the median is a lower bound
        steps = sorted(r["threshold_at_env_steps"] or float("inf") for r in rs)
        median = statistics.median(steps)
        finals = [r["final_return_mean"] for r in rs]
        out[variant] = {
            "runs": len(rs),
            "reached": len(reached),
            "median_env_steps_to_threshold": None if median == float("inf") else median,
            "median_is_lower_bound": len(reached) < len(rs),
            "budget_env_steps": rs[0]["budget_env_steps"],
            "median_final_return": statistics.median(finals),
            "final_returns": finals,
            "final_above_demonstrator": sum(f > demo_avg for f in finals),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    demos, demo_returns = record_demos(workdir, args.episodes)
    demo_avg = statistics.fmean(demo_returns)
    print(f"demonstrator {DEMONSTRATOR}: {len(demo_returns)} episodes, average {demo_avg:.1f}")
    records = []
    for seed in args.seeds:
        for variant in args.variants:
            budget = args.dqn_steps if variant == "dqn" else args.dqfd_steps
            records.append(train_one(variant, seed, budget, demos, workdir))
    summary = summarise(records, demo_avg)
    print(
        f"\n{'variant':10s} {'reached':>8s} {'median steps to threshold':>26s} "
        f"{'median final':>13s} {'final > demonstrator':>21s}"
    )
    for variant, s in summary.items():
        steps = s["median_env_steps_to_threshold"]
        shown = f"> {s['budget_env_steps']:,}" if steps is None else f"{steps:,.0f}"
        if steps is not None and s["median_is_lower_bound"]:
            shown = f">= {steps:,.0f}"
        print(
            f"{variant:10s} {s['reached']:>4d}/{s['runs']:<3d} {shown:>26s} "
            f"{s['median_final_return']:>13.1f} {s['final_above_demonstrator']:>17d}/{s['runs']}"
        )
    if "dqn" in summary and "dqfd" in summary:
        dq, base = summary["dqfd"], summary["dqn"]
        if dq["median_env_steps_to_threshold"] is not None:
            denom = base["median_env_steps_to_threshold"] or base["budget_env_steps"]
            bound = "<=" if base["median_is_lower_bound"] else "="
            print(
                f"\nDQfD / DQN env steps to threshold (medians): {bound} "
                f"{dq['median_env_steps_to_threshold'] / denom:.3f} (target <= 0.5)"
            )
    if args.json:
        payload = {
            "benchmark": "demos",
            "env_id": ENV_ID,
            "demonstrator": DEMONSTRATOR,
            "demonstrator_returns": demo_returns,
            "demonstrator_average": demo_avg,
            "records": records,
            "summary": summary,
            "machine": machine_info(),
        }
        Path(args.json).write_text(json.dumps(payload, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
