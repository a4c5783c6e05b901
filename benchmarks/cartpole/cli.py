"""`rlfleet bench cartpole`: wall-clock time to solve CartPole-v1, rlfleet presets (Ape-X by
default; ``--presets`` for others, e.g. ``ppo-cartpole``) vs SB3 DQN/PPO.

The command line: the benchmark's own options, the hidden options of an SB3 ``--child``, the loop
over seeds and implementations (one run at a time) and the JSON document ``--json`` writes. The
package docstring has the protocol.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict

from benchmarks.cartpole.protocol import (
    ENV_ID,
    EVAL_EPISODES,
    IMPLS,
    PROTOCOL_KEYS,
    SB3_EVAL_EVERY,
    SB3_TORCH_THREADS,
    SOLVE_CONSECUTIVE,
    SOLVE_THRESHOLD,
    ZOO_DQN,
    ZOO_PPO,
)
from benchmarks.cartpole.records import RunRecord
from benchmarks.cartpole.report import (
    is_rlfleet,
    print_report,
    ratios,
    ratios_by_base,
    rlfleet_impl,
    summarise,
)
from benchmarks.cartpole.runs import run_rlfleet, run_sb3
from benchmarks.cartpole.sb3_child import run_child
from benchmarks.machine import machine_info
from benchmarks.sb3_peers import sb3_available
from benchmarks.side_by_side import (
    add_child_arguments,
    add_train_overrides,
    requested_impls,
)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rlfleet bench cartpole``; returns the exit code."""
    args = _parse(argv)
    if args.child:
        launch = args.launch_unix if args.launch_unix is not None else time.time()
        print(json.dumps(run_child(args.child, args.seed, args.max_seconds, launch)))
        return 0
    wanted = requested_impls(args.overrides, PROTOCOL_KEYS, args.impls, IMPLS, IMPLS)
    if wanted is None:
        return 2
    presets = check_presets(args.presets)
    if presets is None:
        return 2
    # "rlfleet" stands for every preset asked for, each a row of its own
    rows = {rlfleet_impl(p): p for p in presets}
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
        f"CartPole-v1 time to solve: presets {', '.join(presets)}, seeds {args.seeds}, cap "
        f"{args.max_seconds:.0f} s per run, "
        f"{machine['cpu_count']} CPUs, load {machine['load_avg_start'][0]:.1f}; SB3 children use "
        f"torch.set_num_threads({SB3_TORCH_THREADS}), evaluate every "
        f"{SB3_EVAL_EVERY['sb3-dqn']} (DQN) / {SB3_EVAL_EVERY['sb3-ppo']} (PPO) env steps"
    )
    records: list[RunRecord] = []
    for seed in args.seeds:  # implementations interleaved per seed so load drift hits all alike
        for impl in impls:
            if is_rlfleet(impl):
                rec = run_rlfleet(seed, args.max_seconds, args.overrides, rows[impl], impl)
            else:
                rec = run_sb3(impl, seed, args.max_seconds)
            records.append(rec)
            status = f"solved in {rec.time_to_solve_s:.1f} s" if rec.solved else "unsolved"
            extra = f" ({rec.time_excl_eval_s:.1f} s excl. eval)" if rec.eval_s is not None else ""
            print(f"  {impl} seed {seed}: {status}{extra}, {rec.error or rec.stop_reason}")
    summary = summarise(records)
    first = next((i for i in impls if is_rlfleet(i)), "rlfleet")
    rat = ratios(summary, args.max_seconds, base=first)
    by_base = ratios_by_base(summary, args.max_seconds)
    print_report(records, summary, by_base)
    if args.json:
        machine["load_avg_end"] = os.getloadavg()
        payload = {
            "benchmark": "cartpole",
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
                "ratios": f"peer median / {first} median; above 1 means {first} is faster",
                "ratios_by_preset": "the same against every rlfleet row",
            },
            "presets": presets,
            "hyperparameters": {"sb3-dqn": ZOO_DQN, "sb3-ppo": ZOO_PPO},
            "rlfleet_overrides": args.overrides,
            "seeds": args.seeds,
            "skipped": skipped,
            "machine": machine,
            "runs": [asdict(r) for r in records],
            "summary": summary,
            "ratios": rat,
            "ratios_by_preset": by_base,
        }
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=1)
        print(f"wrote {args.json}")
    return 0


def check_presets(presets: list[str]) -> list[str] | None:
    """The presets, de-duplicated, if all exist (else None, after printing the valid ones)."""
    from rlfleet.cli.presets import preset_names

    valid = preset_names()
    unknown = [p for p in presets if p not in valid]
    if unknown:
        print(f"unknown --presets {unknown}; valid: {', '.join(valid)}", file=sys.stderr)
        return None
    return list(dict.fromkeys(presets))


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="rlfleet bench cartpole", description=(__doc__ or "").splitlines()[0]
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
    p.add_argument("--max-seconds", type=float, default=120.0, help="cap per run (default 120)")
    p.add_argument(
        "--presets",
        nargs="+",
        default=["cartpole"],
        metavar="PRESET",
        help="rlfleet presets to benchmark, each a row (default: cartpole), e.g. "
        "--presets cartpole impala-cartpole ppo-cartpole; --set applies to every one",
    )
    add_train_overrides(p)
    add_child_arguments(p, IMPLS[1:])
    return p.parse_args(argv)
