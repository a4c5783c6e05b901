"""Latencies of ``rlfleet bench transport``: the actor's parameter fetch right after a publish,
and an experience push through ``RedisOutbox`` until it is in Redis."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.transport.payloads import (
    RUN,
    TRANSITIONS,
    UNBOUNDED_QUEUE,
    experience_batch,
)
from rlfleet.errors import RlfleetError

PARAM_SIZES = (1_000_000, 13_000_000)  # bytes of float32 parameters
FETCH_P99_TARGET_MS = 50.0


def _stats_ms(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 4),
        "p99_ms": round(float(np.percentile(ms, 99)), 4),
        "mean_ms": round(float(ms.mean()), 4),
        "max_ms": round(float(ms.max()), 4),
    }


# ---- parameter fetch ----------------------------------------------------------------------------
def param_fetch_latency(url: str, nbytes: int, reps: int, seed: int = 0) -> dict[str, Any]:
    """Actor-side ``fetch_if_newer`` latency right after each publish of a new version, plus the
    learner's publish time and the no-news version check, each on its own connection."""
    from rlfleet.transport.redis import RedisParams, connect

    learner_client, actor_client = connect(url), connect(url)
    try:
        learner = RedisParams(learner_client, RUN)
        actor = RedisParams(actor_client, RUN)
        flat = np.random.default_rng(seed).standard_normal(nbytes // 4).astype(np.float32)
        out = np.zeros_like(flat)
        learner.publish(flat, 1)  # warm-up: connections, allocator
        if actor.fetch_if_newer(0, out) != 1:
            raise RlfleetError("warm-up parameter fetch returned nothing")
        fetch, publish, check = [], [], []
        for i in range(reps):
            version = i + 2
            t0 = time.perf_counter()
            learner.publish(flat, version)
            publish.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            got = actor.fetch_if_newer(version - 1, out)
            fetch.append(time.perf_counter() - t0)
            if got != version:
                raise RlfleetError(f"fetch after publishing version {version} returned {got}")
            t0 = time.perf_counter()
            if actor.fetch_if_newer(version, out) is not None:
                raise RlfleetError("version check found a newer version that was never published")
            check.append(time.perf_counter() - t0)
        if not np.array_equal(out, flat) or learner.errors or actor.errors or actor.rejected:
            raise RlfleetError("parameter round trip lost data or counted errors")
        wire = actor.bytes_downloaded // actor.downloads
        stats = _stats_ms(fetch)
        learner_client.delete(learner.data_key, learner.version_key)
    finally:
        learner_client.close()
        actor_client.close()
    return {
        "model_bytes": int(flat.nbytes),
        "floats": int(flat.size),
        "wire_bytes": int(wire),
        "reps": reps,
        **stats,
        "mb_per_s_at_p50": round(wire / 1e6 / (stats["p50_ms"] / 1000.0), 1),
        "publish_p50_ms": _stats_ms(publish)["p50_ms"],
        "version_check_p50_ms": _stats_ms(check)["p50_ms"],
        "version_check_p99_ms": _stats_ms(check)["p99_ms"],
    }


# ---- experience push latency -------------------------------------------------------------------
def push_latency(url: str, kind: str, compress: str, reps: int, seed: int = 0) -> dict[str, Any]:
    """``encode`` + ``RedisOutbox.push`` per batch of 50 transitions, the list emptied between
    pushes (untimed), so every push finds room; ``decode`` as the learner's side of the cost.

    ``push()`` only hands the message to the outbox's sender thread, so two times are kept: until
    the message is in Redis (``push`` + ``flush``: the p50/p99 columns) and until ``push()``
    returns (``call_*``: what the actor waits)."""
    from rlfleet.transport.codec import decode, encode
    from rlfleet.transport.redis import RedisOutbox, connect, experience_key

    rng = np.random.default_rng(seed)
    batch = experience_batch(kind, TRANSITIONS, rng)
    raw_bytes = sum(a.nbytes for a in batch.values())
    client = connect(url)
    key = experience_key(RUN)
    try:
        outbox = RedisOutbox(client, RUN, actor_id="latency", max_queue=UNBOUNDED_QUEUE)
        meta = {"actor": 0, "policy_version": 1, "env_steps": TRANSITIONS}
        payload = encode("experience", batch, meta, compress)
        outbox.push(payload)  # warm-up: connection and sender thread
        outbox.flush(30.0)
        client.delete(key)
        enc, push, call, dec = [], [], [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            payload = encode("experience", batch, meta, compress)
            enc.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            outbox.push(payload)
            call.append(time.perf_counter() - t0)
            outbox.flush(30.0)
            push.append(time.perf_counter() - t0)
            client.delete(key)
            t0 = time.perf_counter()
            decode(payload, kinds={"experience"})
            dec.append(time.perf_counter() - t0)
        if outbox.pushed != reps + 1 or outbox.backlog or outbox.dropped or outbox.errors:
            raise RlfleetError(f"push latency run lost messages: pushed {outbox.pushed}")
    finally:
        client.close()
    return {
        "obs": kind,
        "compress": compress,
        "transitions": TRANSITIONS,
        "array_bytes": int(raw_bytes),
        "wire_bytes": len(payload),
        "compression_ratio": round(raw_bytes / len(payload), 2),
        "reps": reps,
        **_stats_ms(push),
        "call_p50_ms": _stats_ms(call)["p50_ms"],
        "call_p99_ms": _stats_ms(call)["p99_ms"],
        "encode_p50_ms": _stats_ms(enc)["p50_ms"],
        "decode_p50_ms": _stats_ms(dec)["p50_ms"],
    }
