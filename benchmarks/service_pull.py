"""Replay pull through a real replay service, measured end to end (``rlfleet bench transport``
and ``rlfleet bench replay-service``)."""

from __future__ import annotations

import threading
import time

import numpy as np

from rlfleet.errors import TransportError


def bench_replay_service(
    url: str,
    *,
    batches: int = 500,
    batch_size: int = 32,
    obs_shape: tuple[int, ...] = (4,),
    obs_dtype: str = "float32",
    transitions_per_message: int = 50,
    fill: int = 20_000,
    run: str = "bench-replay",
    seed: int = 0,
) -> dict[str, float]:
    """Replay pull throughput through a real replay service, measured end to end.

    Against the Redis server at ``url``: a :class:`ReplayService` (in this process, its own
    threads) is filled with ``fill`` synthetic transitions pushed as experience messages of
    ``transitions_per_message`` through :class:`~rlfleet.transport.redis.RedisOutbox`; then a
    learner-side :class:`RemoteStore` pulls ``batches`` sampled batches of ``batch_size`` and
    sends a priority update for each (as the learner does after every step). The run's keys are
    deleted before and after.

    Returns ``batches_per_s`` (pull + decode + validation + priority send, with the service
    sampling and applying updates concurrently), ``batch_bytes`` (one encoded batch message),
    ``update_bytes`` (one priority message), ``bytes_per_update`` (their sum: what crosses the
    network per learner update with the service), and, for comparison,
    ``experience_bytes_per_item`` (experience message bytes per transition: a learner that
    samples locally pulls ``batch_size / samples_per_insert`` of those per update).
    """
    import gymnasium as gym

    from rlfleet.agents.apex.config import ApexConfig
    from rlfleet.agents.apex.spec import SPEC
    from rlfleet.config import from_dict
    from rlfleet.envs.spec import EnvSpec
    from rlfleet.fleet.addresses import FleetAddresses
    from rlfleet.fleet.services import CLAIM_TTL_S
    from rlfleet.fleet.wiring import learner_ends, service_ends
    from rlfleet.transport.codec import encode
    from rlfleet.transport.redis import RedisOutbox, connect, delete_run

    dtype = np.dtype(obs_dtype)
    config = from_dict(
        ApexConfig,
        {
            "transport": {"kind": "redis", "replay_service": True, "max_queue": 1024},
            "replay": {"capacity": max(2 * fill, 1000), "learning_starts": batch_size},
            "learner": {"batch_size": batch_size},
            "actor": {"push_size": transitions_per_message},
        },
    )
    client = connect(url)
    delete_run(client, run)
    rng = np.random.default_rng(seed)
    n = transitions_per_message

    def obs() -> np.ndarray:
        if dtype.kind == "u":
            return rng.integers(0, 255, (n, *obs_shape), dtype=dtype)
        return rng.standard_normal((n, *obs_shape)).astype(dtype)

    message = encode(
        "experience",
        {
            "obs": obs(),
            "action": rng.integers(0, 2, n, dtype=np.int64),
            "reward": rng.standard_normal(n).astype(np.float32),
            "discount": np.full(n, 0.97, np.float32),
            "next_obs": obs(),
            "priority": rng.random(n, dtype=np.float32) + 0.1,
        },
        {"actor": 0, "policy_version": 1, "env_steps": n},
    )
    outbox = RedisOutbox(client, run, "bench", max_queue=1024, max_backlog=1024)
    for _ in range(max(1, fill // n)):
        outbox.push(message)
    outbox.flush()

    stop = threading.Event()
    env = EnvSpec("bench", tuple(obs_shape), dtype, gym.spaces.Discrete(2))
    ends, claim = service_ends(config, SPEC, client, run, "replay-bench", env, CLAIM_TTL_S)
    claim.acquire()
    service = SPEC.service.make_service(config, env, seed, ends, "replay-bench")
    service.start()
    learner = learner_ends(config, SPEC, FleetAddresses.remote(url, run), env)
    store = learner.store
    try:
        deadline = time.monotonic() + 60.0
        while len(service.store) < fill - n and time.monotonic() < deadline:
            stop.wait(0.05)  # the service drains the experience list
        abs_td = np.ones(batch_size, np.float32)
        warm = store.take(config.replay.beta_start, timeout=5.0)
        if warm is None:
            raise TransportError("the replay service sent no batch within 5 s")
        source, sink = store.batch_source, store.priority_sink
        start = time.perf_counter()
        received, pushed, pushed_bytes = source.bytes_received, sink.pushed, sink.bytes_pushed
        for _ in range(batches):
            drawn = store.take(config.replay.beta_start, timeout=5.0)
            if drawn is None:
                raise TransportError("the replay service stopped sending batches")
            store.update(drawn.token, abs_td)
        elapsed = time.perf_counter() - start
        batch_bytes = (source.bytes_received - received) / batches
        update_bytes = (sink.bytes_pushed - pushed_bytes) / max(sink.pushed - pushed, 1)
    finally:
        service.stop()
        learner.close()
        delete_run(client, run)
        client.close()
    return {
        "batches_per_s": batches / elapsed,
        "batch_bytes": float(batch_bytes),
        "update_bytes": float(update_bytes),
        "bytes_per_update": float(batch_bytes + update_bytes),
        "experience_bytes_per_item": len(message) / n,
        "batch_size": float(batch_size),
    }
