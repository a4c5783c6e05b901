"""`rlfleet bench dagger`: DAgger against behaviour cloning given the same expert-label budget.

Protocol (docs/dagger.md):

* For every environment (CartPole-v1, MountainCar-v0), label budget on a ladder (default 100,
  250, 500, 1,000, 5,000) and seed, train ``dagger-<env>`` and ``bc-<env>`` (the same agent with
  ``beta_decay = 1``: the expert drives every iteration) with ``dagger.max_labels = budget`` and
  about ten iterations (``labels_per_iteration = max(budget / 10, 64)``), each run its own
  ``rlfleet train`` process, until the preset's solve criterion (greedy 20-episode mean at
  ``eval.solve_threshold``, twice in a row) or ``--max-seconds``.
* Labels to solve, per seed: the smallest budget of the ladder from which on every budget
  solved. (Collecting labels takes far less time than evaluating a policy, so within one run
  the evaluator usually sees a policy trained on the whole budget: the ladder is what resolves
  how many labels are needed.)
* Per run: the expert labels the solving policy was trained on (the learner's dataset when it
  published the version whose evaluation completed the solve criterion), the env steps the
  actors had reported by the solve, seconds from launch, and the final 20-episode greedy
  evaluation of what the run saved.
* Per method: runs solved, median labels / env steps / seconds to solve (unsolved runs count as
  beyond the budget, so a median with unsolved runs is a lower bound), median final return.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.children import launch_child, output_tail, train_command
from benchmarks.machine import machine_info

ENVS = ("cartpole", "mountaincar")
METHODS = ("dagger", "bc")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="rlfleet bench dagger", description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument(
        "--budgets",
        type=int,
        nargs="+",
        default=[100, 250, 500, 1000, 5000],
        help="expert-label budgets, the ladder (default 100 250 500 1000 5000)",
    )
    p.add_argument("--envs", nargs="+", default=list(ENVS), choices=ENVS)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--max-seconds", type=float, default=90.0, help="cap per run (90)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    p.add_argument("--json", default=None, metavar="PATH", help="write every figure here")
    return p.parse_args(argv)


def labels_at_solve(run_dir: Path, final: dict[str, Any]) -> int | None:
    """Expert labels the solving policy was trained on: the version of the evaluation that
    completed the solve criterion, looked up in the learner's ``labels_by_version`` (D's size
    when it published that version; saved in its last checkpoint)."""
    if not final["solved"]:
        return None
    from rlfleet.agents.common.checkpoint import latest_checkpoint, read_state

    solving = next(e for e in final["evaluations"] if e["wall_s"] >= final["solved_at_s"])
    by_version = read_state(latest_checkpoint(run_dir))["labels_by_version"]
    return int(by_version[str(int(solving["version"]))])


def run_one(
    env: str, method: str, budget: int, seed: int, max_seconds: float, overrides: list[str]
) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(prefix=f"rlfleet-bench-dagger-{method}-{env}-"))
    settings = {
        "run.seed": str(seed),
        "run.max_seconds": str(max_seconds),
        "run.stop_on_solve": "true",
        "dagger.max_labels": str(budget),
        "dagger.labels_per_iteration": str(max(budget // 10, 64)),
    }
    child = launch_child(
        lambda _launch: train_command(f"{method}-{env}", str(run_dir), settings, overrides),
        timeout_s=max_seconds + 120.0,
        kill_wait_s=10.0,
    )
    final_path = run_dir / "final_eval.json"
    if child.returncode != 0 or not final_path.exists():
        raise SystemExit(
            f"rlfleet bench dagger: {method}-{env} seed {seed} failed: {output_tail(child.stderr)}"
        )
    final = json.loads(final_path.read_text())
    solved_at = final["solved_at_unix"] - child.launch_unix if final["solved"] else None
    record = {
        "env": env,
        "method": method,
        "budget": budget,
        "seed": seed,
        "solved": bool(final["solved"]),
        "seconds_to_solve": round(solved_at, 2) if solved_at is not None else None,
        "labels_to_solve": labels_at_solve(run_dir, final),
        "env_steps_to_solve": final["solved_at_env_steps"],
        "env_steps": final["env_steps"],
        "updates": final["updates"],
        "final_return_mean": final["final_return_mean"],
        "stop_reason": final["stop_reason"],
        "run_dir": str(run_dir),
    }
    solved = (
        f"solved at {record['labels_to_solve']} labels / {record['seconds_to_solve']} s"
        if record["solved"]
        else "not solved"
    )
    print(
        f"{method:6s} {env:11s} budget {budget:5d} seed {seed}: {solved}, final "
        f"{record['final_return_mean']:.1f}",
        flush=True,
    )
    return record


def labels_needed(records: list[dict[str, Any]]) -> int | None:
    """Of one seed's runs over the budget ladder: the smallest budget from which on every run
    solved (None if the largest did not)."""
    needed = None
    for r in sorted(records, key=lambda r: r["budget"], reverse=True):
        if not r["solved"]:
            break
        needed = r["budget"]
    return needed


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per (env, budget, method): runs solved, median final return and seconds to solve; per
    (env, method): the labels needed by each seed and their median (unsolved counts as more
    than the largest budget, making the median a lower bound or None)."""
    rows = []
    for env, budget, method in dict.fromkeys((r["env"], r["budget"], r["method"]) for r in records):
        rs = [r for r in records if (r["env"], r["budget"], r["method"]) == (env, budget, method)]
        times = [r["seconds_to_solve"] for r in rs if r["solved"]]
        rows.append(
            {
                "env": env,
                "budget": budget,
                "method": method,
                "runs": len(rs),
                "solved": sum(r["solved"] for r in rs),
                "median_final_return": statistics.median(r["final_return_mean"] for r in rs),
                "final_returns": [r["final_return_mean"] for r in rs],
                "median_seconds_to_solve": statistics.median(times) if times else None,
                "median_labels_of_solving_policy": (
                    statistics.median(r["labels_to_solve"] for r in rs if r["solved"])
                    if times
                    else None
                ),
            }
        )
    needed = []
    for env, method in dict.fromkeys((r["env"], r["method"]) for r in records):
        per_seed = {}
        for seed in dict.fromkeys(r["seed"] for r in records):
            rs = [r for r in records if (r["env"], r["method"], r["seed"]) == (env, method, seed)]
            per_seed[seed] = labels_needed(rs)
        ordered = sorted(float("inf") if v is None else v for v in per_seed.values())
        median = statistics.median(ordered)
        needed.append(
            {
                "env": env,
                "method": method,
                "labels_needed_per_seed": per_seed,
                "median_labels_needed": None if median == float("inf") else median,
                "median_is_lower_bound": any(v is None for v in per_seed.values()),
            }
        )
    return {"rows": rows, "labels_needed": needed}


def print_table(summary: dict[str, Any]) -> None:
    print(
        f"{'env':11s} {'labels':>6s} {'method':6s} {'solved':>6s} {'seconds':>8s} "
        f"{'policy labels':>13s}  final return: median (per seed)"
    )
    for r in summary["rows"]:
        seconds, labels = r["median_seconds_to_solve"], r["median_labels_of_solving_policy"]
        finals = " ".join(f"{f:.0f}" for f in r["final_returns"])
        print(
            f"{r['env']:11s} {r['budget']:>6,d} {r['method']:6s} {r['solved']:>2d}/{r['runs']:<3d} "
            f"{('-' if seconds is None else f'{seconds:.1f}'):>8s} "
            f"{('-' if labels is None else f'{labels:,.0f}'):>13s}  "
            f"{r['median_final_return']:.1f} ({finals})"
        )
    print("labels needed (smallest budget of the ladder from which every run solved):")
    for n in summary["labels_needed"]:
        seeds = ", ".join(
            f"{s}: {'-' if v is None else f'{v:,}'}" for s, v in n["labels_needed_per_seed"].items()
        )
        median = n["median_labels_needed"]
        shown = "more than the ladder" if median is None else f"{median:,.0f}"
        bound = " (lower bound)" if n["median_is_lower_bound"] and median is not None else ""
        print(f"  {n['env']:11s} {n['method']:6s} median {shown}{bound}  [seed {seeds}]")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    info = machine_info()
    records = []
    for env in args.envs:
        for budget in args.budgets:
            for seed in args.seeds:
                for method in args.methods:  # interleaved: load drift hits both alike
                    records.append(
                        run_one(env, method, budget, seed, args.max_seconds, args.overrides)
                    )
    summary = summarise(records)
    print_table(summary)
    info["load_avg_end"] = os.getloadavg()
    if args.json:
        payload = {"machine": info, "args": vars(args), **summary, "runs": records}
        Path(args.json).write_text(json.dumps(payload, indent=1))
        print(f"wrote {args.json}")
    return 0
