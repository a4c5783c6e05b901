"""`rlfleet bench cartpole`: wall-clock time to solve CartPole-v1, rlfleet presets (Ape-X by
default; ``--presets`` for others, e.g. ``ppo-cartpole``) vs SB3 DQN/PPO.

The command line: the benchmark's own options, the hidden options of an SB3 ``--child``, the loop
over seeds and implementations (one run at a time) and the JSON document ``--json`` writes. The
package docstring has the protocol.
"""

from __future__ import annotations

import argparse
import json
import time

from benchmarks.cartpole import protocol as protocol_module
from benchmarks.cartpole.protocol import (
    IMPLS,
    PROTOCOL_KEYS,
    SB3_EVAL_EVERY,
    SB3_TORCH_THREADS,
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
    add_time_to_solve_arguments,
    check_presets,
    plan_rows,
    run_interleaved,
    time_to_solve_document,
    time_to_solve_protocol,
    write_json,
)

__all__ = ["check_presets", "main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rlfleet bench cartpole``; returns the exit code."""
    args = _parse(argv)
    if args.child:
        launch = args.launch_unix if args.launch_unix is not None else time.time()
        print(json.dumps(run_child(args.child, args.seed, args.max_seconds, launch)))
        return 0
    # "rlfleet" stands for every preset asked for, each a row of its own
    plan = plan_rows(args, PROTOCOL_KEYS, IMPLS, rlfleet_impl, sb3_available)
    if plan is None:
        return 2
    presets, rows, impls, skipped = plan
    machine = machine_info(("torch", "gymnasium", "stable-baselines3"))
    print(
        f"CartPole-v1 time to solve: presets {', '.join(presets)}, seeds {args.seeds}, cap "
        f"{args.max_seconds:.0f} s per run, "
        f"{machine['cpu_count']} CPUs, load {machine['load_avg_start'][0]:.1f}; SB3 children use "
        f"torch.set_num_threads({SB3_TORCH_THREADS}), evaluate every "
        f"{SB3_EVAL_EVERY['sb3-dqn']} (DQN) / {SB3_EVAL_EVERY['sb3-ppo']} (PPO) env steps"
    )

    def run(impl: str, seed: int) -> RunRecord:
        if is_rlfleet(impl):
            return run_rlfleet(seed, args.max_seconds, args.overrides, rows[impl], impl)
        return run_sb3(impl, seed, args.max_seconds)

    records = run_interleaved(args.seeds, impls, run)
    summary = summarise(records)
    first = next((i for i in impls if is_rlfleet(i)), "rlfleet")
    rat = ratios(summary, args.max_seconds, base=first)
    by_base = ratios_by_base(summary, args.max_seconds)
    print_report(records, summary, by_base)
    if args.json:
        protocol = time_to_solve_protocol(protocol_module, args.max_seconds)
        protocol["ratios"] = f"peer median / {first} median; above 1 means {first} is faster"
        protocol["ratios_by_preset"] = "the same against every rlfleet row"
        payload = time_to_solve_document(
            "cartpole",
            protocol,
            args,
            presets,
            {"sb3-dqn": ZOO_DQN, "sb3-ppo": ZOO_PPO},
            skipped,
            machine,
            records,
            summary,
            {"ratios": rat, "ratios_by_preset": by_base},
        )
        write_json(args.json, payload, machine)
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="rlfleet bench cartpole", description=(__doc__ or "").splitlines()[0]
    )
    add_time_to_solve_arguments(
        p,
        IMPLS,
        default_presets=["cartpole"],
        presets_help="rlfleet presets to benchmark, each a row (default: cartpole), e.g. "
        "--presets cartpole impala-cartpole ppo-cartpole; --set applies to every one",
        max_seconds=120.0,
    )
    return p.parse_args(argv)
