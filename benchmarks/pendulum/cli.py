"""`rlfleet bench pendulum`: wall-clock time to solve Pendulum-v1, rlfleet presets vs SB3 TD3 and
SAC (the package docstring has the protocol)."""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict

from benchmarks.cartpole.cli import check_presets
from benchmarks.cartpole.records import RunRecord
from benchmarks.cartpole.report import (
    is_rlfleet,
    print_report,
    ratios_by_base,
    rlfleet_impl,
    summarise,
)
from benchmarks.cartpole.runs import run_rlfleet, run_sb3
from benchmarks.machine import machine_info
from benchmarks.pendulum.protocol import (
    DEFAULT_PRESETS,
    ENV_ID,
    EVAL_EPISODES,
    IMPLS,
    PROTOCOL_KEYS,
    PROTOCOL_SETTINGS,
    SB3_EVAL_EVERY,
    SB3_TORCH_THREADS,
    SOLVE_CONSECUTIVE,
    SOLVE_THRESHOLD,
    ZOO_SAC,
    ZOO_TD3,
)
from benchmarks.pendulum.sb3_child import run_child
from benchmarks.sb3_peers import sb3_available
from benchmarks.side_by_side import add_child_arguments, add_train_overrides, requested_impls


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rlfleet bench pendulum``; returns the exit code."""
    args = _parse(argv)
    if args.child:
        launch = args.launch_unix if args.launch_unix is not None else time.time()
        print(json.dumps(run_child(args.child, args.seed, args.max_seconds, launch)))
        return 0
    wanted = requested_impls(args.overrides, PROTOCOL_KEYS, args.impls, IMPLS, IMPLS)
    presets = check_presets(args.presets)
    if wanted is None or presets is None:
        return 2
    rows = {rlfleet_impl(p, default=""): p for p in presets}  # rows named rlfleet:<preset>
    wanted = [r for i in wanted for r in (rows if i == "rlfleet" else [i])]
    impls = [i for i in wanted if is_rlfleet(i) or sb3_available()]
    skipped = [i for i in wanted if i not in impls]
    if skipped:
        print(
            f"peers skipped ({', '.join(skipped)}): stable-baselines3 is not installed; "
            'install them with: pip install -e ".[bench]"'
        )
    machine = machine_info(("torch", "gymnasium", "stable-baselines3"))
    print(
        f"{ENV_ID} time to solve (>= {SOLVE_THRESHOLD:g} twice): presets {', '.join(presets)}, "
        f"seeds {args.seeds}, cap {args.max_seconds:.0f} s per run, {machine['cpu_count']} "
        f"CPUs, load {machine['load_avg_start'][0]:.1f}; SB3 children evaluate every "
        f"{SB3_EVAL_EVERY['sb3-td3']} env steps with torch.set_num_threads({SB3_TORCH_THREADS})"
    )
    records: list[RunRecord] = []
    for seed in args.seeds:  # interleaved per seed so load drift hits all alike
        for impl in impls:
            if is_rlfleet(impl):
                rec = run_rlfleet(
                    seed, args.max_seconds, args.overrides, rows[impl], impl, PROTOCOL_SETTINGS
                )
            else:
                rec = run_sb3(impl, seed, args.max_seconds, module="benchmarks.pendulum")
            records.append(rec)
            status = f"solved in {rec.time_to_solve_s:.1f} s" if rec.solved else "unsolved"
            extra = f" ({rec.time_excl_eval_s:.1f} s excl. eval)" if rec.eval_s is not None else ""
            print(f"  {impl} seed {seed}: {status}{extra}, {rec.error or rec.stop_reason}")
    summary = summarise(records)
    by_base = ratios_by_base(summary, args.max_seconds)
    print_report(records, summary, by_base, env_id=ENV_ID, threshold=SOLVE_THRESHOLD)
    if args.json:
        machine["load_avg_end"] = os.getloadavg()
        payload = {
            "benchmark": "pendulum",
            "protocol": {
                "env": ENV_ID,
                "eval_episodes": EVAL_EPISODES,
                "solve_threshold": SOLVE_THRESHOLD,
                "solve_consecutive": SOLVE_CONSECUTIVE,
                "time": "wall clock from process launch to the end of the solving evaluation",
                "cap_s": args.max_seconds,
                "unsolved": "counted as the cap",
                "sb3_eval_every_env_steps": SB3_EVAL_EVERY,
                "sb3_torch_threads": SB3_TORCH_THREADS,
                "sb3_headline": "time excluding SB3's in-process evaluations (favours SB3)",
                "ratios_by_preset": "peer median / rlfleet row median; above 1: rlfleet faster",
            },
            "presets": presets,
            "hyperparameters": {"sb3-td3": ZOO_TD3, "sb3-sac": ZOO_SAC},
            "rlfleet_overrides": args.overrides,
            "seeds": args.seeds,
            "skipped": skipped,
            "machine": machine,
            "runs": [asdict(r) for r in records],
            "summary": summary,
            "ratios_by_preset": by_base,
        }
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=1)
        print(f"wrote {args.json}")
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="rlfleet bench pendulum", description=(__doc__ or "").splitlines()[0]
    )
    p.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="default: 0 1 2 3 4"
    )
    p.add_argument("--json", metavar="PATH", help="write every figure and machine info here")
    p.add_argument(
        "--impls",
        default=None,
        help=f"comma-separated subset of {','.join(IMPLS)} (default: all available)",
    )
    p.add_argument(
        "--presets",
        nargs="+",
        default=list(DEFAULT_PRESETS),
        metavar="PRESET",
        help="rlfleet presets to benchmark, each a row (default: dpg-pendulum ppo-pendulum); --set "
        "applies to every one",
    )
    p.add_argument("--max-seconds", type=float, default=300.0, help="cap per run (default 300)")
    add_train_overrides(p)
    add_child_arguments(p, IMPLS[1:])
    return p.parse_args(argv)
