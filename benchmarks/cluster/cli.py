"""`rlfleet bench cluster`: one preset trained with the local launcher and through ``--ray`` on a
two-node Ray cluster of this machine, seed by seed, in the same session.

Protocol: the CartPole protocol of ``rlfleet bench cartpole`` (solve = greedy mean >= 475 over 20
episodes at two consecutive evaluations; time from launching the ``rlfleet train`` process to the
end of the solving evaluation, interpreter start-up included; unsolved = the cap). Both rows get
the same settings, ``actor.num_actors`` pinned (default 1, what the local launcher picks on 2
cores) so the ``--ray`` row does not size its fleet to the cluster's logical CPUs. The order of
the two alternates from seed to seed so load drift hits both alike. The cluster (``ray start
--head`` + one ``ray start --address``) is started once, before the first run, and stopped at the
end; its start-up is not in any run's time, as on a real cluster that is already up. Each
``--ray`` run starts its own redis-server on the learner's node, as a user's run does. Start-up
is reported as launch -> first env step and launch -> first learner update.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict

from benchmarks.cartpole.protocol import PROTOCOL_KEYS, PROTOCOL_SETTINGS
from benchmarks.cartpole.records import RunRecord
from benchmarks.cartpole.report import print_report, ratios, summarise
from benchmarks.cartpole.runs import run_rlfleet
from benchmarks.cluster.nodes import TwoNodeCluster
from benchmarks.machine import machine_info
from benchmarks.side_by_side import add_train_overrides, check_presets

#: the two rows (rlfleet rows for the shared report: no SB3 evaluation columns)
ROWS = ("rlfleet:local", "rlfleet:ray")


def _median(values: list[float]) -> float | None:
    s = sorted(values)
    if not s:
        return None
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2.0


def startup_summary(records: list[RunRecord]) -> dict[str, dict[str, float | None]]:
    """Per row: median launch -> first env step and launch -> first update, over the runs that
    report them."""
    out: dict[str, dict[str, float | None]] = {}
    for row in dict.fromkeys(r.impl for r in records):
        rs = [r for r in records if r.impl == row]
        out[row] = {
            "median_first_env_step_s": _median(
                [r.first_env_step_s for r in rs if r.first_env_step_s is not None]
            ),
            "median_first_update_s": _median(
                [r.first_update_s for r in rs if r.first_update_s is not None]
            ),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rlfleet bench cluster``; returns the exit code."""
    args = _parse(argv)
    bad = [o for o in args.overrides if o.split("=", 1)[0] in PROTOCOL_KEYS]
    if bad:
        print(f"--set {bad} would change the protocol; the benchmark owns {PROTOCOL_KEYS}")
        return 2
    presets = check_presets([args.preset])
    if presets is None:
        return 2
    overrides = [f"actor.num_actors={args.actors}", *args.overrides]
    machine = machine_info(("torch", "ray", "redis"))
    print(
        f"{args.preset}: local launcher vs --ray on a two-node cluster (head {args.head_cpus} "
        f"CPUs, worker {args.worker_cpus} CPUs, logical), seeds {args.seeds}, "
        f"{args.actors} actor(s), cap {args.max_seconds:.0f} s, {machine['cpu_count']} CPUs, "
        f"load {machine['load_avg_start'][0]:.1f}"
    )
    cluster = TwoNodeCluster(args.head_cpus, args.worker_cpus)
    records: list[RunRecord] = []
    try:
        cluster.start()
        print(f"cluster up at {cluster.address}")
        for i, seed in enumerate(args.seeds):
            for row in ROWS if i % 2 == 0 else ROWS[::-1]:
                on_ray = row == ROWS[1]
                ray_args = ["--ray", cluster.address] if on_ray else []
                rec = run_rlfleet(
                    seed,
                    args.max_seconds,
                    overrides,
                    args.preset,
                    row,
                    PROTOCOL_SETTINGS,
                    extra_args=ray_args,
                    env_extra=cluster.env if on_ray else None,
                )
                records.append(rec)
                status = f"solved in {rec.time_to_solve_s:.1f} s" if rec.solved else "unsolved"
                print(
                    f"  {row} seed {seed}: {status}, first env step {rec.first_env_step_s} s, "
                    f"first update {rec.first_update_s} s, {rec.error or rec.stop_reason}"
                )
    finally:
        cluster.stop()
    summary = summarise(records)
    rat = ratios(summary, args.max_seconds, base=ROWS[0]).get(ROWS[1], {})
    startup = startup_summary(records)
    print_report(records, summary, {})
    if rat:
        print(
            f"--ray median / local median: {rat['bound']}{rat['incl_eval']}x (above 1: the "
            "local launcher solves faster; unsolved runs count as the cap)"
        )
    for row, s in startup.items():
        print(
            f"{row:>13} start-up: first env step {s['median_first_env_step_s']} s, first update "
            f"{s['median_first_update_s']} s (medians from launch)"
        )
    if args.json:
        machine["load_avg_end"] = os.getloadavg()
        payload = {
            "benchmark": "cluster",
            "protocol": (__doc__ or "").strip(),
            "preset": args.preset,
            "actors": args.actors,
            "cluster_cpus": {"head": args.head_cpus, "worker": args.worker_cpus},
            "overrides": args.overrides,
            "seeds": args.seeds,
            "machine": machine,
            "runs": [asdict(r) for r in records],
            "summary": summary,
            "ratios": {"description": "ray median / local median", **rat},
            "startup": startup,
        }
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=1)
        print(f"wrote {args.json}")
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="rlfleet bench cluster", description=(__doc__ or "").splitlines()[0]
    )
    p.add_argument("--preset", default="cartpole", help="a CartPole preset (default: cartpole)")
    p.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="default: 0 1 2 3 4"
    )
    p.add_argument("--actors", type=int, default=1, help="actor.num_actors for both rows")
    p.add_argument("--head-cpus", type=int, default=2, help="the head node's --num-cpus")
    p.add_argument("--worker-cpus", type=int, default=2, help="the worker node's --num-cpus")
    p.add_argument("--max-seconds", type=float, default=120.0, help="cap per run (default 120)")
    p.add_argument("--json", metavar="PATH", help="write every figure and machine info here")
    add_train_overrides(p)
    return p.parse_args(argv)
