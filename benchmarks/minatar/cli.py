"""`rlfleet bench minatar`: a MinAtar game on a wall-clock budget, rlfleet vs SB3 PPO side by side.

The command line: the benchmark's own options, the hidden options of an SB3 ``--child``, and the
loop over seeds and implementations (one run at a time). The package docstring has the protocol.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from benchmarks.machine import machine_info
from benchmarks.minatar.protocol import (
    DEFAULT_BUDGET_MIN,
    DEFAULT_CHECKPOINTS_MIN,
    DEFAULT_GAME,
    DEFAULT_IMPLS,
    EVAL_EPISODES,
    EVAL_INTERVAL_S,
    FINAL_EPISODES,
    IMPLS,
    PROTOCOL_KEYS,
    QUICK_BUDGET_MIN,
    QUICK_CHECKPOINTS_MIN,
    QUICK_EVAL_INTERVAL_S,
    game_env_id,
    usable_cpus,
)
from benchmarks.minatar.records import RunRecord
from benchmarks.minatar.report import build_payload, format_return, print_report
from benchmarks.minatar.runs import run_rlfleet, run_sb3
from benchmarks.minatar.sb3_ppo import run_child
from benchmarks.sb3_peers import sb3_available
from benchmarks.side_by_side import (
    add_child_arguments,
    add_train_overrides,
    requested_impls,
)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="rlfleet bench minatar", description=(__doc__ or "").splitlines()[0]
    )
    p.add_argument("--game", default=DEFAULT_GAME, help=f"MinAtar game (default {DEFAULT_GAME})")
    p.add_argument(
        "--budget-minutes",
        type=float,
        default=None,
        help=f"wall-clock budget per run (default {DEFAULT_BUDGET_MIN:g})",
    )
    p.add_argument(
        "--checkpoints",
        type=float,
        nargs="+",
        default=None,
        metavar="MINUTE",
        help="checkpoint minutes (default 10 30); at most the budget",
    )
    p.add_argument(
        "--impls",
        default=None,
        help=f"comma-separated subset of {','.join(IMPLS)} (default: {','.join(DEFAULT_IMPLS)})",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="default: 0")
    p.add_argument(
        "--eval-interval",
        type=float,
        default=None,
        metavar="S",
        help=f"rlfleet's seconds between evaluations (default {EVAL_INTERVAL_S:g}, quick "
        f"{QUICK_EVAL_INTERVAL_S:g})",
    )
    p.add_argument(
        "--eval-episodes", type=int, default=EVAL_EPISODES, help="episodes per evaluation"
    )
    p.add_argument(
        "--final-episodes", type=int, default=FINAL_EPISODES, help="episodes of the final one"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_BUDGET_MIN:g}-minute budget, checkpoints at "
        f"{' and '.join(f'{m:g}' for m in QUICK_CHECKPOINTS_MIN)} min (a smoke run)",
    )
    p.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        metavar="N",
        help="torch threads of the SB3 process (default: the CPUs this process may use)",
    )
    p.add_argument("--json", metavar="PATH", help="write every figure and machine info here")
    p.add_argument("--run-root", metavar="DIR", help="keep the rlfleet run folders under DIR")
    add_train_overrides(p)
    add_child_arguments(p, [k for k, v in IMPLS.items() if v is None])
    p.add_argument("--budget-s", type=float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--checkpoints-s", type=float, nargs="+", default=[], help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rlfleet bench minatar``; returns the exit code."""
    args = _parse(argv)
    if args.child:
        launch = args.launch_unix if args.launch_unix is not None else time.time()
        res = run_child(
            args.child,
            args.seed,
            args.game,
            args.budget_s,
            args.checkpoints_s,
            launch,
            args.eval_episodes,
            args.final_episodes,
            args.torch_threads,
        )
        print(json.dumps(res))
        return 0
    from rlfleet.envs.minatar import minatar_available

    try:
        env_id = game_env_id(args.game)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not minatar_available():
        print('MinAtar is not installed: pip install -e ".[minatar]"', file=sys.stderr)
        return 2
    budget_min = args.budget_minutes or (QUICK_BUDGET_MIN if args.quick else DEFAULT_BUDGET_MIN)
    minutes = args.checkpoints or list(
        QUICK_CHECKPOINTS_MIN if args.quick else DEFAULT_CHECKPOINTS_MIN
    )
    minutes = sorted(set(minutes))
    if minutes[0] <= 0 or minutes[-1] > budget_min:
        print(f"--checkpoints must lie in (0, {budget_min:g}] minutes", file=sys.stderr)
        return 2
    eval_interval = args.eval_interval or (QUICK_EVAL_INTERVAL_S if args.quick else EVAL_INTERVAL_S)
    wanted = requested_impls(args.overrides, PROTOCOL_KEYS, args.impls, IMPLS, DEFAULT_IMPLS)
    if wanted is None:
        return 2
    impls = [i for i in wanted if IMPLS[i] is not None or sb3_available()]
    skipped = [i for i in wanted if i not in impls]
    if skipped:
        print(
            f"peers skipped ({', '.join(skipped)}): stable-baselines3 is not installed; "
            'install it with: pip install -e ".[bench]"'
        )
    budget_s = 60.0 * budget_min
    machine = machine_info(("torch", "gymnasium", "stable-baselines3", "minatar"))
    print(
        f"{env_id}: {', '.join(impls)}; seeds {args.seeds}; {budget_min:g}-minute budget per "
        f"run, checkpoints at {', '.join(f'{m:g}' for m in minutes)} min; one run at a time; "
        f"{machine['cpu_count']} CPUs, load {machine['load_avg_start'][0]:.1f}"
        + (
            f"; SB3 uses torch.set_num_threads({args.torch_threads or usable_cpus()})"
            if "sb3-ppo" in impls
            else ""
        )
    )
    records: list[RunRecord] = []
    for seed in args.seeds:
        for impl in impls:
            print(f"  {impl} seed {seed}: running ({budget_min:g} min) ...", flush=True)
            if IMPLS[impl] is None:
                rec = run_sb3(
                    impl,
                    seed,
                    args.game,
                    budget_s,
                    minutes,
                    eval_episodes=args.eval_episodes,
                    final_episodes=args.final_episodes,
                    torch_threads=args.torch_threads,
                )
            else:
                rec = run_rlfleet(
                    impl,
                    seed,
                    args.game,
                    budget_s,
                    minutes,
                    eval_interval_s=eval_interval,
                    eval_episodes=args.eval_episodes,
                    final_episodes=args.final_episodes,
                    overrides=args.overrides,
                    run_root=args.run_root,
                )
            records.append(rec)
            final = format_return(
                rec.final_return_mean, rec.final_return_std, len(rec.final_returns) or None
            )
            print(
                f"  {impl} seed {seed}: {rec.end_env_steps or 0:,} env steps, final eval {final}; "
                f"{rec.error or rec.stop_reason}"
            )
    print_report(records, env_id, budget_s)
    if args.json:
        machine["load_avg_end"] = os.getloadavg()
        payload = build_payload(
            records,
            game=args.game,
            budget_s=budget_s,
            minutes=minutes,
            eval_interval_s=eval_interval,
            eval_episodes=args.eval_episodes,
            final_episodes=args.final_episodes,
            seeds=args.seeds,
            overrides=args.overrides,
            skipped=skipped,
            quick=args.quick,
            machine=machine,
            sb3_torch_threads=args.torch_threads or usable_cpus(),
        )
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=1)
        print(f"wrote {args.json}")
    return 1 if any(r.error for r in records) else 0
