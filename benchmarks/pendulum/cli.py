"""`rlfleet bench pendulum`: wall-clock time to solve Pendulum-v1, rlfleet presets vs SB3 TD3 and
SAC (the package docstring has the protocol)."""

from __future__ import annotations

import argparse
import json
import time

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
from benchmarks.pendulum import protocol as protocol_module
from benchmarks.pendulum.protocol import (
    DEFAULT_PRESETS,
    ENV_ID,
    IMPLS,
    PROTOCOL_KEYS,
    PROTOCOL_SETTINGS,
    SB3_EVAL_EVERY,
    SB3_TORCH_THREADS,
    SOLVE_THRESHOLD,
    ZOO_SAC,
    ZOO_TD3,
)
from benchmarks.pendulum.sb3_child import run_child
from benchmarks.sb3_peers import sb3_available
from benchmarks.side_by_side import (
    add_time_to_solve_arguments,
    plan_rows,
    run_interleaved,
    time_to_solve_document,
    time_to_solve_protocol,
    write_json,
)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rlfleet bench pendulum``; returns the exit code."""
    args = _parse(argv)
    if args.child:
        launch = args.launch_unix if args.launch_unix is not None else time.time()
        print(json.dumps(run_child(args.child, args.seed, args.max_seconds, launch)))
        return 0
    # rows named rlfleet:<preset>
    plan = plan_rows(
        args, PROTOCOL_KEYS, IMPLS, lambda p: rlfleet_impl(p, default=""), sb3_available
    )
    if plan is None:
        return 2
    presets, rows, impls, skipped = plan
    machine = machine_info(("torch", "gymnasium", "stable-baselines3"))
    print(
        f"{ENV_ID} time to solve (>= {SOLVE_THRESHOLD:g} twice): presets {', '.join(presets)}, "
        f"seeds {args.seeds}, cap {args.max_seconds:.0f} s per run, {machine['cpu_count']} "
        f"CPUs, load {machine['load_avg_start'][0]:.1f}; SB3 children evaluate every "
        f"{SB3_EVAL_EVERY['sb3-td3']} env steps with torch.set_num_threads({SB3_TORCH_THREADS})"
    )

    def run(impl: str, seed: int) -> RunRecord:
        if is_rlfleet(impl):
            return run_rlfleet(
                seed, args.max_seconds, args.overrides, rows[impl], impl, PROTOCOL_SETTINGS
            )
        return run_sb3(impl, seed, args.max_seconds, module="benchmarks.pendulum")

    records = run_interleaved(args.seeds, impls, run)
    summary = summarise(records)
    by_base = ratios_by_base(summary, args.max_seconds)
    print_report(records, summary, by_base, env_id=ENV_ID, threshold=SOLVE_THRESHOLD)
    if args.json:
        protocol = time_to_solve_protocol(protocol_module, args.max_seconds)
        protocol["ratios_by_preset"] = "peer median / rlfleet row median; above 1: rlfleet faster"
        payload = time_to_solve_document(
            "pendulum",
            protocol,
            args,
            presets,
            {"sb3-td3": ZOO_TD3, "sb3-sac": ZOO_SAC},
            skipped,
            machine,
            records,
            summary,
            {"ratios_by_preset": by_base},
        )
        write_json(args.json, payload, machine)
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="rlfleet bench pendulum", description=(__doc__ or "").splitlines()[0]
    )
    add_time_to_solve_arguments(
        p,
        IMPLS,
        default_presets=DEFAULT_PRESETS,
        presets_help="rlfleet presets to benchmark, each a row (default: dpg-pendulum "
        "ppo-pendulum); --set applies to every one",
        max_seconds=300.0,
    )
    return p.parse_args(argv)
