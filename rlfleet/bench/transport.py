"""``rlfleet bench transport``: the Redis transport on loopback, next to ``redis-benchmark``.

Everything goes through rlfleet's own classes (:class:`RedisParams`, :class:`RedisOutbox`,
:class:`RedisInbox`, the codec), against a throw-away ``redis-server`` that the benchmark starts
on a free 127.0.0.1 port with a random password and no persistence. Measured, as the Redis-based
Ape-X work did (issue 4):

* **parameter fetch latency** p50/p99 for 1 MB and 13 MB float32 vectors: the actor's
  ``fetch_if_newer`` right after the learner published a new version (version check, download,
  validation, copy into the actor's vector), on its own connection;
* **experience push latency** p50/p99 of ``RedisOutbox.push`` until the message is in Redis
  (``push`` + ``flush``), for batches of 50 transitions with CartPole-sized vector observations
  and with 4x84x84 uint8 frame stacks (obs and next_obs), raw and compressed with lz4 / zstd when
  installed; the time ``push()`` itself holds the actor, encode and decode times beside them;
* **experience push throughput** with 1, 2, 4, 8 actor processes (spawned), each pushing an
  encoded message in a loop through ``RedisOutbox`` while a trimmer keeps the list short, next to
  ``redis-benchmark -t lpush`` with the same payload size and the same number of clients
  (``-c K`` against K actors), measured in the same run, interleaved. The outbox's sender thread
  sends what queued up during one round trip in the next (one ``RPUSH`` of several messages);
  redis-benchmark (``-P 1``) and the plain redis-py column send one message per round trip;
* **replay pull throughput and bytes per learner update**: the learner pulling raw experience
  (``RedisInbox.pull``, decode and schema check) versus a replay service next to Redis that sends
  only sampled batches. The service path is *measured* through the real replay service
  (``rlfleet.runtime.remote_replay.bench_replay_service``: a ``ReplayService`` filled over Redis,
  a learner-side store pulling batches and sending priority updates) for raw messages; for lz4
  messages, or an install without the service, it is *computed* from encoded sample and priority
  messages with their wire-only pull rate through Redis. Each row says which.
  ``rlfleet bench replay-service`` measures whole fleets with and without the service.

Targets: push throughput >= 80% of redis-benchmark's at the same payload size and client count;
13 MB parameter fetch p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import multiprocessing as mp
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlfleet.bench.machine import machine_info
from rlfleet.errors import RlfleetError

RUN = "bench"
TRANSITIONS = 50
N_STEP = 3
VECTOR_OBS = (4,)  # CartPole
FRAME_OBS = (4, 84, 84)  # Atari / Nature DQN stack
PARAM_SIZES = (1_000_000, 13_000_000)  # bytes of float32 parameters
THROUGHPUT_RATIO_TARGET = 0.8
FETCH_P99_TARGET_MS = 50.0
#: The throughput workers' queue bound: never reached (the trimmer keeps the list short), so
#: the outbox never waits for room -- the path an actor takes while the learner keeps up.
UNBOUNDED_QUEUE = 1 << 30
#: Entries the trimmer leaves in a list (bounded server memory during throughput runs).
TRIM_KEEP = 32


def _compressors() -> list[str]:
    """Codecs usable here: raw always, lz4 / zstd when their packages are installed."""
    found = ["raw"]
    if importlib.util.find_spec("lz4") is not None:
        found.append("lz4")
    if importlib.util.find_spec("zstandard") is not None:
        found.append("zstd")
    return found


# ---- the server ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LoopbackRedis:
    """A throw-away ``redis-server`` on a free 127.0.0.1 port with a random password, protected
    mode on and no persistence; a context manager that stops it (and removes its folder)."""

    def __init__(self, binary: str | None = None) -> None:
        found = binary or shutil.which("redis-server")
        if not found or not Path(found).exists():
            raise RlfleetError(
                "redis-server not found: install it (Debian/Ubuntu: apt-get install "
                "redis-server) or pass --redis-server PATH"
            )
        self.binary = found
        self.port = _free_port()
        self.password = secrets.token_urlsafe(24)
        self.workdir = Path(tempfile.mkdtemp(prefix="rlfleet-bench-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def version(self) -> str:
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True).stdout
        return out.strip()

    def start(self, timeout: float = 15.0) -> None:
        """Start the server and wait until it answers an authenticated PING."""
        from rlfleet.transport.redis import connect

        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--protected-mode", "yes", "--requirepass", self.password, "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no"]
        args += ["--logfile", str(self.workdir / "redis.log")]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                log = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
                raise RlfleetError(f"redis-server exited with {self.proc.returncode}:\n{log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RlfleetError(
                        f"redis-server did not listen on port {self.port} within {timeout} s"
                    ) from None
                time.sleep(0.02)  # server start-up: nothing to block on
        connect(self.url, wait=max(1.0, deadline - time.monotonic())).close()

    def stop(self) -> None:
        """Terminate the server (kill after 10 s) and delete its folder."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LoopbackRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---- payloads -----------------------------------------------------------------------------------
def synthetic_frames(count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` Pong-like 84x84 uint8 frames: a flat background, two paddles and a ball moving
    between frames. Real game frames compress like this; random bytes would not compress at all."""
    frames = np.full((count, 84, 84), 87, np.uint8)
    frames[:, :6, :] = 236  # score bar
    left, right = 30.0, 40.0
    ball = np.array([42.0, 42.0])
    speed = rng.uniform(-2.0, 2.0, size=2) + np.array([1.5, 0.5])
    for i in range(count):
        left = float(np.clip(left + rng.normal(0, 2), 6, 68))
        right = float(np.clip(right + rng.normal(0, 2), 6, 68))
        ball += speed
        for axis in (0, 1):
            if not 7 <= ball[axis] <= 81:
                speed[axis] = -speed[axis]
                ball[axis] = np.clip(ball[axis], 7, 81)
        frames[i, int(left) : int(left) + 16, 8:12] = 213
        frames[i, int(right) : int(right) + 16, 72:76] = 92
        y, x = int(ball[0]), int(ball[1])
        frames[i, y : y + 2, x : x + 2] = 236
    return frames


def experience_batch(kind: str, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One actor push of ``n`` n-step transitions: the arrays ``runtime.actor`` sends."""
    if kind == "vector":
        seq = rng.standard_normal((n + N_STEP, *VECTOR_OBS)).astype(np.float32)
        obs, next_obs = seq[:n], seq[N_STEP:]
    elif kind == "frames":
        single = synthetic_frames(n + N_STEP + FRAME_OBS[0], rng)
        stacks = np.lib.stride_tricks.sliding_window_view(single, FRAME_OBS[0], axis=0)
        stacks = np.moveaxis(stacks, -1, 1)  # (count, 4, 84, 84)
        obs, next_obs = stacks[:n].copy(), stacks[N_STEP : N_STEP + n].copy()
    else:
        raise RlfleetError(f"unknown observation kind {kind!r}; valid: vector, frames")
    return {
        "obs": obs,
        "next_obs": next_obs,
        "action": rng.integers(0, 6, n).astype(np.int64),
        "reward": rng.standard_normal(n).astype(np.float32),
        "discount": np.full(n, 0.99**N_STEP, np.float32),
        "priority": rng.uniform(0.1, 2.0, n).astype(np.float32),
    }


def obs_spec(kind: str) -> tuple[tuple[int, ...], np.dtype]:
    """Per-item observation shape and dtype of an observation kind."""
    return (
        (VECTOR_OBS, np.dtype(np.float32)) if kind == "vector" else (FRAME_OBS, np.dtype(np.uint8))
    )


def experience_payload(kind: str, compress: str, seed: int = 0, n: int = TRANSITIONS) -> bytes:
    """An encoded experience message, as an actor pushes it."""
    from rlfleet.transport.codec import encode

    batch = experience_batch(kind, n, np.random.default_rng(seed))
    meta = {"actor": 0, "policy_version": 1, "env_steps": n}
    return encode("experience", batch, meta, compress)


def sample_payload(kind: str, compress: str, batch_size: int, seed: int = 0) -> bytes:
    """What a replay service would send per learner update: one sampled batch with importance
    weights and the slots' indices (for the priority update that comes back)."""
    from rlfleet.transport.codec import encode

    batch = experience_batch(kind, batch_size, np.random.default_rng(seed))
    del batch["priority"]
    batch["weight"] = np.ones(batch_size, np.float32)
    batch["index"] = np.arange(batch_size, dtype=np.int64)
    return encode("sample", batch, {"version": 1}, compress)


def priority_payload(batch_size: int) -> bytes:
    """The learner's answer to a sampled batch: new priorities for the sampled slots."""
    from rlfleet.transport.codec import encode

    arrays = {
        "index": np.arange(batch_size, dtype=np.int64),
        "priority": np.ones(batch_size, np.float32),
    }
    return encode("priorities", arrays, {"version": 1})


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


# ---- push throughput ----------------------------------------------------------------------------
class _Trimmer:
    """Keeps a list at about ``TRIM_KEEP`` entries (``LTRIM`` every 10 ms) so the server's memory
    stays bounded during a throughput run; used for rlfleet's list and redis-benchmark's alike."""

    def __init__(self, url: str, key: str) -> None:
        from rlfleet.transport.redis import connect

        self._client = connect(url)
        self._key = key
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-trimmer", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(0.01):
            self._client.ltrim(self._key, -TRIM_KEEP, -1)

    def __enter__(self) -> _Trimmer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._client.delete(self._key)
        self._client.close()


def _push_worker(
    url: str,
    index: int,
    mode: str,
    kind: str,
    compress: str,
    duration: float,
    ready: Any,
    start: Any,
    results: Any,
) -> None:
    """One actor process of the throughput run: push one encoded batch for ``duration`` s,
    through ``RedisOutbox`` (``mode="outbox"``) or a plain redis-py ``RPUSH`` (``"redis-py"``).

    The outbox has an actor's default local backlog (``transport.max_backlog``); its sender
    thread sends what queued up during a round trip in the next one. The window ends once the
    backlog has reached Redis, so only delivered messages count."""
    from rlfleet.runtime.apex_config import TransportSection
    from rlfleet.transport.redis import RedisOutbox, connect, experience_key

    payload = experience_payload(kind, compress, seed=index)
    client = connect(url)
    outbox = RedisOutbox(
        client,
        RUN,
        actor_id=f"bench{index}",
        max_queue=UNBOUNDED_QUEUE,
        max_backlog=TransportSection().max_backlog,
    )
    if mode == "redis-py":  # the floor of any Python client: one plain RPUSH per message
        key = experience_key(RUN)
        push = lambda data: client.rpush(key, data)  # noqa: E731
    else:
        push = outbox.push
    outbox.push(payload)  # warm-up: connection and sender thread
    outbox.flush(30.0)
    warm_trips = outbox.round_trips
    ready.put(index)
    if not start.wait(120):
        results.put({"index": index, "error": "never started"})
        return
    sent = 0
    t_start = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process on the host
    while True:
        push(payload)
        sent += 1
        if time.monotonic() - t_start >= duration:
            break
    flushed = outbox.flush(30.0)
    t_end = time.monotonic()
    results.put(
        {
            "index": index,
            "messages": sent,
            "bytes": sent * len(payload),
            "t_start": t_start,
            "t_end": t_end,
            "reached_redis": outbox.pushed - 1 if mode == "outbox" else sent,
            "round_trips": outbox.round_trips - warm_trips if mode == "outbox" else sent,
            "dropped": outbox.dropped,
            "errors": outbox.errors,
            "flushed": flushed,
        }
    )
    client.close()


def _collect(queue: Any, procs: list[Any], timeout: float, what: str) -> list[Any]:
    """One item from each of ``procs`` through ``queue``; a worker that died first is an error
    at once (not after the timeout)."""
    import queue as queue_module

    items: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(items) < len(procs):
        try:
            items.append(queue.get(timeout=0.5))
            continue
        except queue_module.Empty:
            pass
        failed = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
        if failed or all(p.exitcode is not None for p in procs):
            raise RlfleetError(f"throughput workers exited (codes {failed}) before they {what}")
        if time.monotonic() > deadline:
            raise RlfleetError(f"throughput workers did not {what} within {timeout:g} s")
    return items


def push_throughput(
    url: str, kind: str, compress: str, actors: int, duration: float, mode: str = "outbox"
) -> dict[str, Any]:
    """Messages/s and MB/s of ``actors`` spawned processes pushing through ``RedisOutbox``
    (or, ``mode="redis-py"``, plain redis-py RPUSH calls: the Python client's own floor)."""
    from rlfleet.transport.redis import experience_key

    ctx = mp.get_context("spawn")  # clean processes: no inherited sockets or torch threads
    ready, results, start = ctx.Queue(), ctx.Queue(), ctx.Event()
    args = (kind, compress, duration, ready, start, results)
    procs = [
        ctx.Process(target=_push_worker, args=(url, i, mode, *args), daemon=True)
        for i in range(actors)
    ]
    rows: list[dict[str, Any]] = []
    started: list[Any] = []
    with _Trimmer(url, experience_key(RUN)):
        try:
            for proc in procs:
                proc.start()
                started.append(proc)
            _collect(ready, procs, 120.0, "get ready")
            start.set()
            rows = _collect(results, procs, duration + 120.0, "report")
        finally:
            for proc in started:
                proc.join(timeout=10)
                if proc.is_alive():
                    proc.terminate()
                    proc.join(timeout=5)
    errors = [r["error"] for r in rows if "error" in r]
    if errors:
        raise RlfleetError(f"throughput workers failed: {errors}")
    lost = sum(r["messages"] - r["reached_redis"] + r["dropped"] for r in rows)
    window = max(r["t_end"] for r in rows) - min(r["t_start"] for r in rows)
    messages = sum(r["messages"] for r in rows)
    nbytes = sum(r["bytes"] for r in rows)
    return {
        "actors": actors,
        "messages": messages,
        "seconds": round(window, 3),
        "msgs_per_s": round(messages / window, 1),
        "mb_per_s": round(nbytes / window / 1e6, 2),
        "per_actor_msgs_per_s": round(messages / window / actors, 1),
        "msgs_per_round_trip": round(messages / max(1, sum(r["round_trips"] for r in rows)), 2),
        "lost": lost,
        "errors": sum(r["errors"] for r in rows),
    }


def redis_benchmark(
    binary: str, server: LoopbackRedis, size: int, clients: int, requests: int
) -> dict[str, Any]:
    """``redis-benchmark -t lpush -d SIZE -n N -c C -q --csv`` against the same server (its
    list kept short by the same trimmer), parsed from its CSV line."""
    cmd = [binary, "-h", "127.0.0.1", "-p", str(server.port), "-a", server.password]
    options = ["-t", "lpush", "-d", str(size), "-n", str(requests), "-c", str(clients)]
    options += ["-q", "--csv"]
    with _Trimmer(server.url, "mylist"):  # redis-benchmark's LPUSH key
        done = subprocess.run(cmd + options, capture_output=True, text=True, timeout=600)
    rows = [r for r in csv.reader(io.StringIO(done.stdout)) if r]
    header = next((r for r in rows if r[0] == "test"), None)
    line = next((r for r in rows if r[0] == "LPUSH"), None)
    if done.returncode != 0 or header is None or line is None:
        raise RlfleetError(
            f"redis-benchmark failed (exit {done.returncode}): {done.stdout[-500:]} "
            f"{done.stderr[-500:]}"
        )
    fields = dict(zip(header, line, strict=False))
    rps = float(fields["rps"])
    return {
        "clients": clients,
        "requests": requests,
        "command": "redis-benchmark " + " ".join(options),
        "msgs_per_s": round(rps, 1),
        "mb_per_s": round(rps * size / 1e6, 2),
        "p50_ms": float(fields.get("p50_latency_ms", "nan")),
        "p99_ms": float(fields.get("p99_latency_ms", "nan")),
    }


# ---- replay pull --------------------------------------------------------------------------------
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
    from rlfleet.runtime.wiring import experience_schema

    shape, dtype = obs_spec(kind)
    return experience_schema(shape, dtype)


def _sample_expect(kind: str) -> dict:
    expect = _experience_expect(kind)
    del expect["priority"]
    return {**expect, "weight": ("float32", ()), "index": ("int64", ())}


def _service_bench() -> Any:
    """The replay service's end-to-end pull measurement, or None in an install without it."""
    try:
        from rlfleet.runtime.remote_replay import bench_replay_service
    except ImportError:
        return None
    return bench_replay_service


def measure_service(
    url: str, kind: str, batch_size: int, batches: int, fill: int
) -> dict[str, Any] | None:
    """Sampled batches/s and bytes per update through the real replay service (``rlfleet
    replay``'s service filled over Redis, a learner-side store pulling batches and sending
    priority updates), via :func:`rlfleet.runtime.remote_replay.bench_replay_service`; None if
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


# ---- the whole benchmark ------------------------------------------------------------------------
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
    codecs = _compressors()
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
    codecs = _compressors()
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


if __name__ == "__main__":
    sys.exit(main())
