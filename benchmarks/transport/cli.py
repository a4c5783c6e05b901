"""``rlfleet bench transport``: the Redis transport on loopback, next to ``redis-benchmark``.

The whole benchmark: what to measure (:class:`Plan`, full or ``--quick``), every measurement
against one throw-away server (:func:`run_all`) and the command line (:func:`main`). The
measurements themselves are in the sibling modules; the package docstring has the protocol.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.loopback_redis import LoopbackRedis
from benchmarks.machine import machine_info
from benchmarks.transport.latency import (
    FETCH_P99_TARGET_MS,
    PARAM_SIZES,
    param_fetch_latency,
    push_latency,
)
from benchmarks.transport.payloads import TRANSITIONS, available_codecs, experience_payload
from benchmarks.transport.replay_pull import replay_pull
from benchmarks.transport.report import print_tables
from benchmarks.transport.throughput import (
    THROUGHPUT_RATIO_TARGET,
    push_throughput,
    redis_benchmark,
)


@dataclass
class Plan:
    """How much of everything to measure."""

    fetch_reps: dict[int, int]
    latency_reps: dict[str, int]
    actors: list[int]
    duration: float
    throughput_payloads: list[tuple[str, str]]
    pull_messages: dict[str, int]
    service_batches: dict[str, int]
    service_fill: dict[str, int]
    batch_size: int
    spis: list[float]


def make_plan(args: argparse.Namespace) -> Plan:
    """Repetitions and durations for a full or a ``--quick`` run."""
    codecs = available_codecs()
    quick = args.quick
    payloads = [("vector", "raw"), ("frames", "raw")]
    if not quick and "lz4" in codecs:
        payloads.append(("frames", "lz4"))
    actors = args.actors or ([2] if quick else [1, 2, 4, 8])
    return Plan(
        fetch_reps={PARAM_SIZES[0]: 5 if quick else 300, PARAM_SIZES[1]: 5 if quick else 200},
        latency_reps={"vector": 10 if quick else 2000, "frames": 5 if quick else 200},
        actors=actors,
        duration=args.duration or (0.3 if quick else 3.0),
        throughput_payloads=payloads,
        pull_messages={"vector": 64 if quick else 5000, "frames": 8 if quick else 200},
        service_batches={"vector": 10 if quick else 500, "frames": 4 if quick else 60},
        # transitions in the service's replay: enough to sample from, not gigabytes of frames
        service_fill={"vector": 500 if quick else 5000, "frames": 256 if quick else 600},
        batch_size=args.batch_size,
        spis=args.spi,
    )


def run_all(plan: Plan, server: LoopbackRedis, benchmark_binary: str | None) -> dict[str, Any]:
    """Every measurement of the plan against ``server``; returns the JSON document's body."""
    codecs = available_codecs()
    fetch = [param_fetch_latency(server.url, size, plan.fetch_reps[size]) for size in PARAM_SIZES]
    latency = [push_latency(server.url, "vector", "raw", plan.latency_reps["vector"])]
    latency += [push_latency(server.url, "frames", c, plan.latency_reps["frames"]) for c in codecs]
    throughput = []
    for kind, compress in plan.throughput_payloads:
        size = len(experience_payload(kind, compress))
        peer_rate = 0.0
        for actors in plan.actors:
            ours = push_throughput(server.url, kind, compress, actors, plan.duration)
            row: dict[str, Any] = {"obs": kind, "compress": compress, "payload_bytes": size}
            row["rlfleet"] = ours
            row["redis_py_rpush"] = push_throughput(
                server.url, kind, compress, actors, plan.duration, mode="redis-py"
            )
            if benchmark_binary:
                # about ``duration`` seconds of redis-benchmark: its rate at the previous
                # client count, else three times the Python clients' (C is faster)
                rate = peer_rate or 3 * max(ours["msgs_per_s"], row["redis_py_rpush"]["msgs_per_s"])
                requests = max(10 * actors, int(rate * plan.duration))
                peer = redis_benchmark(benchmark_binary, server, size, actors, requests)
                row["redis_benchmark"] = peer
                peer_rate = peer["msgs_per_s"]
                row["ratio"] = round(ours["msgs_per_s"] / peer["msgs_per_s"], 3)
                row["target_met"] = row["ratio"] >= THROUGHPUT_RATIO_TARGET
            else:
                row["redis_benchmark"] = None
                row["ratio"] = None
                row["target_met"] = None
            throughput.append(row)
    pull = [
        replay_pull(
            server.url,
            kind,
            compress,
            plan.batch_size,
            plan.spis,
            plan.pull_messages[kind],
            plan.service_batches[kind],
            plan.service_fill[kind],
        )
        for kind, compress in (("vector", "raw"), ("frames", "raw"))
        + ((("frames", "lz4"),) if "lz4" in codecs else ())
    ]
    p99_13mb = next(r["p99_ms"] for r in fetch if r["model_bytes"] == PARAM_SIZES[1])
    ratios = [r["ratio"] for r in throughput if r["ratio"] is not None]
    return {
        "param_fetch": fetch,
        "push_latency": latency,
        "push_throughput": throughput,
        "replay_pull": pull,
        "targets": {
            "push_throughput_ratio_min": THROUGHPUT_RATIO_TARGET,
            "push_throughput_compared_at": "the same client count: K actor processes vs "
            "redis-benchmark -c K, same payload size",
            "push_throughput_min_ratio": min(ratios) if ratios else None,
            "push_throughput_met_everywhere": all(r >= THROUGHPUT_RATIO_TARGET for r in ratios)
            if ratios
            else None,
            "param_fetch_13mb_p99_ms_max": FETCH_P99_TARGET_MS,
            "param_fetch_13mb_p99_ms": p99_13mb,
            "param_fetch_met": p99_13mb <= FETCH_P99_TARGET_MS,
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rlfleet bench transport``; returns the exit code."""
    p = argparse.ArgumentParser(prog="rlfleet bench transport", description=__doc__.splitlines()[0])
    p.add_argument("--json", metavar="PATH", help="write all figures and machine info here")
    p.add_argument(
        "--quick", action="store_true", help="few repetitions, 2 actors, short runs (smoke test)"
    )
    p.add_argument(
        "--actors",
        type=lambda s: [int(x) for x in s.split(",") if x],
        default=None,
        metavar="K,K,...",
        help="actor process counts for the throughput run (default 1,2,4,8)",
    )
    p.add_argument("--duration", type=float, default=None, help="seconds per throughput run (3)")
    p.add_argument("--batch-size", type=int, default=64, help="learner batch (presets: 64)")
    p.add_argument(
        "--spi",
        type=lambda s: [float(x) for x in s.split(",") if x],
        default=[0.25, 1.0, 8.0],
        metavar="X,X,...",
        help="samples-per-insert ratios for bytes per update (presets: 8; Ape-X paper < 1)",
    )
    p.add_argument("--redis-server", default=None, metavar="PATH", help="redis-server binary")
    p.add_argument("--redis-benchmark", default=None, metavar="PATH", help="redis-benchmark binary")
    args = p.parse_args(argv)
    if args.actors is not None and (not args.actors or min(args.actors) < 1):
        p.error("--actors wants positive counts, e.g. 1,2,4,8")
    if args.batch_size < 1 or not args.spi or min(args.spi) <= 0:
        p.error("--batch-size and --spi must be positive")
    plan = make_plan(args)
    benchmark_binary = args.redis_benchmark or shutil.which("redis-benchmark")
    if benchmark_binary is None:
        print(
            "redis-benchmark not found (Debian: apt-get install redis-tools): push throughput "
            "is measured without its reference figures",
            file=sys.stderr,
        )
    info = machine_info(("numpy", "redis", "hiredis", "lz4", "zstandard", "msgpack"))
    with LoopbackRedis(args.redis_server) as server:
        server_version = server.version()
        body = run_all(plan, server, benchmark_binary)
    info["load_avg_end"] = os.getloadavg()
    from redis.utils import HIREDIS_AVAILABLE

    doc = {
        "benchmark": "transport",
        "quick": args.quick,
        "machine": info,
        "redis_server": server_version,
        "redis_benchmark": benchmark_binary,
        "hiredis_parser": bool(HIREDIS_AVAILABLE),
        "plan": {
            "transitions_per_push": TRANSITIONS,
            "actors": plan.actors,
            "duration_s": plan.duration,
            "batch_size": plan.batch_size,
            "samples_per_insert": plan.spis,
            "frames": "synthetic Pong-like 84x84 frames (compressible like real ones)",
        },
        **body,
    }
    print_tables(doc)
    print(
        f"load average {info['load_avg_start'][0]:.2f} at start, {info['load_avg_end'][0]:.2f} at "
        f"end ({info['usable_cpus']} usable cores)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1))
    return 0
