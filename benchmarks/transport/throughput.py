"""Experience push throughput of ``rlfleet bench transport``: K spawned actor processes pushing
through ``RedisOutbox`` (and through plain redis-py ``RPUSH``), next to ``redis-benchmark -t
lpush`` with the same payload size and client count."""

from __future__ import annotations

import csv
import io
import multiprocessing as mp
import subprocess
import threading
import time
from typing import Any

from benchmarks.loopback_redis import LoopbackRedis
from benchmarks.transport.payloads import RUN, UNBOUNDED_QUEUE, experience_payload
from rlfleet.errors import RlfleetError

THROUGHPUT_RATIO_TARGET = 0.8
#: Entries the trimmer leaves in a list (bounded server memory during throughput runs).
TRIM_KEEP = 32


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
    from rlfleet.agents.common.sections import TransportSection
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
