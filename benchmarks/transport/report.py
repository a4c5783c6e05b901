"""The tables ``rlfleet bench transport`` prints from its JSON document, and the targets."""

from __future__ import annotations

from typing import Any

from benchmarks.transport.payloads import TRANSITIONS


def _mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:.3g} MB" if nbytes >= 1e5 else f"{nbytes / 1e3:.3g} kB"


def _columns(table: Any, names: tuple[str, ...]) -> None:
    for name in names:
        table.add_column(name, justify="right")


def print_tables(doc: dict[str, Any]) -> None:
    """The results as rich tables, plus the targets, met or missed."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=150)
    t = Table(title="parameter fetch (actor fetch_if_newer after a publish; own connection)")
    cols = ("model", "wire", "reps", "p50 ms", "p99 ms", "max ms", "MB/s @p50")
    _columns(t, cols + ("publish p50 ms", "version check p50/p99 ms"))
    for r in doc["param_fetch"]:
        t.add_row(
            _mb(r["model_bytes"]),
            _mb(r["wire_bytes"]),
            str(r["reps"]),
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            f"{r['max_ms']:.2f}",
            f"{r['mb_per_s_at_p50']:,.0f}",
            f"{r['publish_p50_ms']:.2f}",
            f"{r['version_check_p50_ms']:.3f} / {r['version_check_p99_ms']:.3f}",
        )
    console.print(t)
    t = Table(
        title=f"experience push latency (RedisOutbox.push until in Redis, {TRANSITIONS} "
        "transitions; push() returns after the call column)"
    )
    cols = ("obs", "codec", "arrays", "wire", "ratio", "reps", "push p50 ms", "push p99 ms")
    _columns(t, cols + ("call p50/p99 ms", "encode p50 ms", "decode p50 ms"))
    for r in doc["push_latency"]:
        t.add_row(
            r["obs"],
            r["compress"],
            _mb(r["array_bytes"]),
            _mb(r["wire_bytes"]),
            f"{r['compression_ratio']:.1f}x",
            str(r["reps"]),
            f"{r['p50_ms']:.3f}",
            f"{r['p99_ms']:.3f}",
            f"{r['call_p50_ms']:.3f} / {r['call_p99_ms']:.3f}",
            f"{r['encode_p50_ms']:.3f}",
            f"{r['decode_p50_ms']:.3f}",
        )
    console.print(t)
    t = Table(title="experience push throughput: K actor processes vs redis-benchmark -c K")
    cols = ("payload", "K", "rlfleet msg/s", "MB/s", "per actor msg/s", "msg per RTT")
    cols += ("redis-py RPUSH msg/s",)
    _columns(t, cols + ("redis-bench msg/s", "MB/s", "ratio", ">= 80%"))
    for r in doc["push_throughput"]:
        ours, peer = r["rlfleet"], r["redis_benchmark"]
        t.add_row(
            f"{r['obs']} {r['compress']} {_mb(r['payload_bytes'])}",
            str(ours["actors"]),
            f"{ours['msgs_per_s']:,.0f}",
            f"{ours['mb_per_s']:,.1f}",
            f"{ours['per_actor_msgs_per_s']:,.0f}",
            f"{ours['msgs_per_round_trip']:.1f}",
            f"{r['redis_py_rpush']['msgs_per_s']:,.0f}",
            f"{peer['msgs_per_s']:,.0f}" if peer else "n/a",
            f"{peer['mb_per_s']:,.1f}" if peer else "n/a",
            f"{r['ratio']:.2f}" if r["ratio"] is not None else "n/a",
            {True: "met", False: "MISSED", None: "n/a"}[r["target_met"]],
        )
    console.print(t)
    t = Table(title="replay pull: learner pulls raw experience (measured)")
    _columns(t, ("obs", "codec", "msg", "msg/s", "MB/s", "transitions/s"))
    for r in doc["replay_pull"]:
        lp = r["learner_side_pull"]
        t.add_row(
            r["obs"],
            r["compress"],
            _mb(lp["wire_bytes"]),
            f"{lp['msgs_per_s']:,.0f}",
            f"{lp['mb_per_s']:,.1f}",
            f"{lp['transitions_per_s']:,.0f}",
        )
    console.print(t)
    t = Table(
        title="bytes per learner update: learner-side sampling vs replay service (measured: "
        "through the real service; computed: encoded messages, wire-only pull rate)"
    )
    cols = ("obs", "codec", "batch", "spi", "learner-side B/update", "service B/update")
    cols += ("service / learner", "max upd/s learner-side", "max upd/s service", "service")
    _columns(t, cols)
    for r in doc["replay_pull"]:
        for s in r["per_samples_per_insert"]:
            t.add_row(
                r["obs"],
                r["compress"],
                str(r["batch_size"]),
                f"{s['samples_per_insert']:g}",
                _mb(s["learner_side_bytes_per_update"]),
                _mb(s["service_bytes_per_update"]),
                f"{s['service_over_learner_side']:.2f}",
                f"{s['learner_side_updates_per_s_max']:,.0f}",
                f"{s['service_updates_per_s_max']:,.0f}",
                r["service"]["source"],
            )
    console.print(t)
    tg = doc["targets"]
    fetch_state = "met" if tg["param_fetch_met"] else "MISSED"
    console.print(
        f"target 13 MB parameter fetch p99 <= {tg['param_fetch_13mb_p99_ms_max']:g} ms: "
        f"{tg['param_fetch_13mb_p99_ms']:.2f} ms -> {fetch_state}"
    )
    if tg["push_throughput_min_ratio"] is None:
        console.print("target push throughput >= 80% of redis-benchmark: not measured")
    else:
        push_state = "met" if tg["push_throughput_met_everywhere"] else "MISSED"
        console.print(
            f"target push throughput >= 80% of redis-benchmark (same payload, K actors vs -c K):"
            f" lowest ratio {tg['push_throughput_min_ratio']:.2f} -> {push_state} "
            "(per row above)"
        )
