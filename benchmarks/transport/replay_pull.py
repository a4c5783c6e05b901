"""Replay pull of ``rlfleet bench transport``: a learner pulling raw experience versus a replay
service sending only sampled batches, as pull rates and bytes per learner update."""

from __future__ import annotations

import time
from typing import Any

from benchmarks.transport.payloads import (
    RUN,
    TRANSITIONS,
    experience_payload,
    obs_spec,
    priority_payload,
    sample_payload,
)
from rlfleet.errors import RlfleetError


def _fill(client: Any, key: str, payload: bytes, count: int) -> None:
    for start in range(0, count, 64):
        client.rpush(key, *[payload] * min(64, count - start))


def pull_throughput(
    url: str, payload: bytes, count: int, kind: str, message_kind: str, expect: dict
) -> dict[str, Any]:
    """``RedisInbox.pull`` (16 at a time, decode and schema check) of ``count`` queued copies of
    ``payload``: what a learner can take in per second."""
    from rlfleet.transport.redis import RedisInbox, connect, experience_key

    client = connect(url)
    key = experience_key(RUN)
    try:
        client.delete(key)
        _fill(client, key, payload, count)
        inbox = RedisInbox(client, RUN, kinds=(message_kind,), expect=expect)
        got = 0
        t0 = time.perf_counter()
        while got < count:
            messages = inbox.pull(timeout=5.0, max_messages=16)
            if not messages:
                raise RlfleetError(f"pull stalled after {got} of {count} messages")
            got += len(messages)
        seconds = time.perf_counter() - t0
        if inbox.rejected or inbox.errors:
            raise RlfleetError(f"pull rejected messages: {inbox.last_error}")
    finally:
        client.delete(key)
        client.close()
    return {
        "messages": count,
        "wire_bytes": len(payload),
        "seconds": round(seconds, 4),
        "msgs_per_s": round(count / seconds, 1),
        "mb_per_s": round(count * len(payload) / seconds / 1e6, 2),
    }


def _experience_expect(kind: str) -> dict:
    from rlfleet.agents.apex.messages import experience_schema

    shape, dtype = obs_spec(kind)
    return experience_schema(shape, dtype)


def _sample_expect(kind: str) -> dict:
    expect = _experience_expect(kind)
    del expect["priority"]
    return {**expect, "weight": ("float32", ()), "index": ("int64", ())}


def _service_bench() -> Any:
    """The replay service's end-to-end pull measurement, or None in an install without it."""
    try:
        from benchmarks.service_pull import bench_replay_service
    except ImportError:
        return None
    return bench_replay_service


def measure_service(
    url: str, kind: str, batch_size: int, batches: int, fill: int
) -> dict[str, Any] | None:
    """Sampled batches/s and bytes per update through the real replay service (``rlfleet
    replay``'s service filled over Redis, a learner-side store pulling batches and sending
    priority updates), via :func:`benchmarks.service_pull.bench_replay_service`; None if
    that is not installed."""
    bench = _service_bench()
    if bench is None:
        return None
    shape, dtype = obs_spec(kind)
    fill = max(4 * batch_size, fill)
    got = bench(
        url,
        batches=batches,
        batch_size=batch_size,
        obs_shape=shape,
        obs_dtype=dtype.name,
        transitions_per_message=TRANSITIONS,
        fill=fill,
        run="bench-service",
    )
    return {k: round(float(v), 2) for k, v in got.items()} | {"fill": fill, "batches": batches}


def replay_pull(
    url: str,
    kind: str,
    compress: str,
    batch_size: int,
    spis: list[float],
    count: int,
    service_batches: int = 0,
    service_fill: int = 5000,
) -> dict[str, Any]:
    """Learner-side sampling vs a replay service, for one observation kind and codec.

    Learner-side: every transition an actor inserts travels to the learner, so bytes per update
    = wire bytes per transition x batch / samples-per-insert, and the measured pull rate bounds
    updates/s at ``transitions/s x spi / batch``. Service: one sampled batch out and one
    priority message back per update, whatever the spi.

    The service path is **measured** through the real replay service (:func:`measure_service`)
    for raw messages when it is installed and ``service_batches > 0``; otherwise (and for
    compressed messages, which the service does not send) it is **computed** from encoded sample
    and priority messages, with the wire-only pull rate of such messages through Redis.
    """
    payload = experience_payload(kind, compress)
    per_transition = len(payload) / TRANSITIONS
    learner = pull_throughput(url, payload, count, kind, "experience", _experience_expect(kind))
    learner["transitions_per_s"] = round(learner["msgs_per_s"] * TRANSITIONS, 1)
    sample = sample_payload(kind, compress, batch_size)
    back = priority_payload(batch_size)
    wire = pull_throughput(url, sample, max(4, count // 2), kind, "sample", _sample_expect(kind))
    measured = None
    if compress == "raw" and service_batches > 0:
        measured = measure_service(url, kind, batch_size, service_batches, service_fill)
    if measured is not None:
        source = "measured"
        service_bytes = measured["bytes_per_update"]
        service_rate = measured["batches_per_s"]
    else:
        source = "computed"
        service_bytes = len(sample) + len(back)
        service_rate = wire["msgs_per_s"]
    per_spi = []
    for spi in spis:
        learner_bytes = per_transition * batch_size / spi
        per_spi.append(
            {
                "samples_per_insert": spi,
                "learner_side_bytes_per_update": round(learner_bytes),
                "service_bytes_per_update": round(service_bytes),
                "service_over_learner_side": round(service_bytes / learner_bytes, 3),
                "learner_side_updates_per_s_max": round(
                    learner["transitions_per_s"] * spi / batch_size, 1
                ),
                "service_updates_per_s_max": service_rate,
            }
        )
    return {
        "obs": kind,
        "compress": compress,
        "batch_size": batch_size,
        "wire_bytes_per_transition": round(per_transition, 1),
        "learner_side_pull": learner,
        "service": {
            "source": source,
            "measured": measured,
            "computed": {
                "note": "bytes of encoded sample + priority messages; pull rate is the wire "
                "rate of sample messages through Redis, without any sampling cost",
                "sample_message_bytes": len(sample),
                "priority_message_bytes": len(back),
                "wire_pull": wire,
            },
        },
        "per_samples_per_insert": per_spi,
    }
