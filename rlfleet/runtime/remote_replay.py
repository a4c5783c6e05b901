"""The replay service over Redis: ``rlfleet replay`` on any host, the local role, the learner's
client, and a throughput probe for ``rlfleet bench transport``.

The service itself (:mod:`rlfleet.runtime.replay_service`) is transport-agnostic; this module
hands it Redis ends:

* experience: the run's experience list, read with the learner's own validation
  (:class:`~rlfleet.transport.redis.RedisInbox` with the experience schema);
* batches: ``rlfleet:{run}:samples``, bounded by ``transport.replay_batches``
  (:class:`~rlfleet.transport.redis.replay.BatchOutbox`);
* priorities: ``rlfleet:{run}:priorities``, popped with a blocking wait;
* membership: a heartbeat in the run's ``replay`` group, and the exclusive claim
  ``rlfleet:{run}:replay_owner`` (a second service for the same run waits as a standby).

``rlfleet replay --redis URL --run NAME`` waits for the run's config in Redis (as ``rlfleet
actor`` does), refuses a run whose config has ``transport.replay_service = false`` (its learner
samples locally and reads the experience list itself), and serves until the run's stop flag,
until no learner has been alive for ``learner_grace_s``, or Ctrl-C.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlfleet.errors import ConfigError, TransportError
from rlfleet.runtime.apex_config import ApexConfig
from rlfleet.runtime.remote_store import RemoteStore
from rlfleet.runtime.replay_messages import BATCH_KIND, DEMAND_KIND, PRIORITIES_KIND
from rlfleet.runtime.replay_service import ReplayService, ServiceEnds
from rlfleet.runtime.wiring import check_service_config

#: Seconds the claim on a run lasts without a refresh (a crashed service's standby waits this).
CLAIM_TTL_S = 6.0
#: Priority-update messages the server holds at most (the oldest are trimmed beyond it).
MAX_UPDATES = 256
#: Longest pause between reconnect attempts.
BACKOFF_CAP_S = 2.0


def _backoff() -> Any:
    from rlfleet.transport.retry import Backoff

    return Backoff(cap=BACKOFF_CAP_S)


def service_ends(
    config: ApexConfig,
    client: Any,
    run: str,
    member: str,
    obs_shape: tuple[int, ...],
    obs_dtype: np.dtype,
) -> tuple[ServiceEnds, Any]:
    """A service's Redis ends, and its claim (call ``claim.acquire()`` before serving)."""
    from rlfleet.runtime.stores import wants_one_step
    from rlfleet.runtime.wiring import experience_schema
    from rlfleet.transport.redis import Heartbeat, RedisInbox
    from rlfleet.transport.redis.replay import BatchOutbox, ServiceClaim, priorities_key

    schema = experience_schema(obs_shape, obs_dtype, wants_one_step(config))
    experience = RedisInbox(client, run, expect=schema, backoff=_backoff())
    updates = RedisInbox(
        client,
        run,
        kinds=(PRIORITIES_KIND, DEMAND_KIND),
        backoff=_backoff(),
        key=priorities_key(run),
    )
    batches = BatchOutbox(client, run, config.transport.replay_batches, backoff=_backoff())
    claim = ServiceClaim(client, run, member, ttl=CLAIM_TTL_S, backoff=_backoff())
    heartbeat = Heartbeat(client, run, member, group="replay")
    last = [float("-inf")]

    def keepalive() -> bool | None:
        heartbeat.beat()  # rate-limited inside
        now = time.monotonic()
        if now - last[0] < CLAIM_TTL_S / 4:
            return True
        last[0] = now
        return claim.refresh()

    def release() -> None:
        claim.release()
        heartbeat.leave()

    ends = ServiceEnds(experience, updates, batches, keepalive=keepalive, release=release)
    return ends, claim


def learner_store(
    config: ApexConfig, client: Any, run: str, obs_shape: tuple[int, ...], obs_dtype: np.dtype
) -> RemoteStore:
    """The learner's :class:`RemoteStore` on the run's samples and priorities lists."""
    from rlfleet.transport.redis import RedisInbox
    from rlfleet.transport.redis.replay import PriorityOutbox, samples_key

    batches = RedisInbox(client, run, kinds=(BATCH_KIND,), backoff=_backoff(), key=samples_key(run))
    priorities = PriorityOutbox(client, run, MAX_UPDATES, backoff=_backoff())
    return RemoteStore(config, obs_shape, obs_dtype, batches, priorities)


def _env_spec(config: ApexConfig, seed: int) -> tuple[tuple[int, ...], np.dtype, int]:
    from rlfleet.envs import check_discrete, make_vector_env

    probe = make_vector_env(config.env.id, 1, seed, env_kwargs=config.env.kwargs or None)
    try:
        check_discrete(probe.action_space, config.env.id, algorithm="Ape-X DQN")
        return tuple(probe.obs_shape), np.dtype(probe.obs_dtype), int(probe.num_actions)
    finally:
        probe.close()


def wait_for_claim(claim: Any, stop_check: Callable[[float], str | None]) -> str:
    """Block until this instance holds the run's claim ("") or ``stop_check`` names a reason."""
    while True:
        if claim.acquire():
            return ""
        reason = stop_check(0.5)  # another instance serves the run: standby
        if reason:
            return reason


def serve_replay(
    config: ApexConfig,
    client: Any,
    run: str,
    seed: int,
    stop_check: Callable[[float], str | None],
    report: Callable[[dict[str, Any]], None] | None = None,
    on_standby: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Claim the run, build the service (store, demonstrations, limiter) and serve until
    ``stop_check`` names a reason; returns the service's final stats with ``stop_reason``."""
    check_service_config(config)
    member = f"replay-{secrets.token_hex(4)}"
    obs_shape, obs_dtype, num_actions = _env_spec(config, seed)
    ends, claim = service_ends(config, client, run, member, obs_shape, obs_dtype)
    if on_standby is not None and claim.acquire() is False:
        on_standby(claim.holder() or "?")
    reason = wait_for_claim(claim, stop_check)
    if reason:
        return {"stop_reason": reason, "batches": 0}
    try:
        service = ReplayService(
            config,
            seed,
            ends,
            obs_shape=obs_shape,
            obs_dtype=obs_dtype,
            num_actions=num_actions,
            service_id=member,
        )
    except BaseException:
        ends.release()
        raise
    reason = service.serve(stop_check, report)
    return {**service.stats(), "stop_reason": reason}


# ---- rlfleet replay ---------------------------------------------------------------------------
@dataclass
class RemoteReplayResult:
    """What ``rlfleet replay`` reports when it ends."""

    run: str
    stop_reason: str = ""
    stats: dict[str, Any] = field(default_factory=dict)


class RemoteReplay:
    """``rlfleet replay``: one replay service for a run, on this host, in this process."""

    def __init__(self, redis_url: str, run: str, *, learner_grace_s: float = 30.0) -> None:
        from rlfleet.transport.redis import RunStatus, connect

        self.run_name = run
        self.learner_grace_s = learner_grace_s
        self.client = connect(redis_url, wait=30.0)
        self.status = RunStatus(self.client, run)
        self._last_learner = time.monotonic()
        self._interrupted = threading.Event()

    def _learner_alive(self) -> bool | None:
        from rlfleet.transport.redis import alive_members

        try:
            return bool(alive_members(self.client, self.run_name, "learners"))
        except TransportError:
            return None  # Redis unreachable: unknown, not dead

    def stop_check(self, wait_s: float) -> str | None:
        """The run's stop flag, or no learner for ``learner_grace_s``; sleeps ``wait_s``."""
        if self._interrupted.wait(wait_s):
            return "interrupted"
        if self.status.stop_requested():
            return "run stopped"
        alive = self._learner_alive()
        if alive or alive is None:
            self._last_learner = time.monotonic()
        elif time.monotonic() - self._last_learner > self.learner_grace_s:
            return "no learner"
        return None

    def run(
        self,
        wait_s: float = 120.0,
        report: Callable[[dict[str, Any]], None] | None = None,
        on_standby: Callable[[str], None] | None = None,
    ) -> RemoteReplayResult:
        """Wait for the run's config, then serve it until the run ends."""
        from rlfleet.runtime.remote import wait_for_config

        result = RemoteReplayResult(run=self.run_name)
        try:
            config = wait_for_config(self.client, self.run_name, wait_s)
            if not isinstance(config, ApexConfig) or not config.transport.replay_service:
                raise ConfigError(
                    f"run {self.run_name!r} does not use a replay service: its learner samples "
                    "its own replay (start the run with --set transport.replay_service=true)"
                )
            self._last_learner = time.monotonic()
            stats = serve_replay(
                config,
                self.client,
                self.run_name,
                config.run.seed + 313,
                self.stop_check,
                report=report,
                on_standby=on_standby,
            )
            result.stats = stats
            result.stop_reason = str(stats["stop_reason"])
        except KeyboardInterrupt:
            result.stop_reason = "interrupted"
        finally:
            self.client.close()
        return result


# ---- a throughput probe for rlfleet bench transport --------------------------------------------
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
    from rlfleet.config import from_dict
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
    ends, claim = service_ends(config, client, run, "replay-bench", tuple(obs_shape), dtype)
    claim.acquire()
    service = ReplayService(
        config, seed, ends, obs_shape=tuple(obs_shape), obs_dtype=dtype, num_actions=2
    )
    service.start()
    store = learner_store(config, client, run, tuple(obs_shape), dtype)
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


# ---- the local role ---------------------------------------------------------------------------
def replay_main(config_json: str, addresses: Any, seed: int) -> None:
    """Process entry point of the replay service under the local launcher (``rlfleet train
    --transport redis --set transport.replay_service=true``): status and the stop command on
    the launcher's link, data through Redis."""
    from rlfleet.runtime.links import CMD_STOP, RoleLink
    from rlfleet.runtime.roles import _config, _guard, set_threads
    from rlfleet.transport.redis import connect

    config = _config(config_json)
    set_threads(1)
    link = RoleLink.dial(addresses.status, addresses.authkey, "replay")

    def stop_check(wait_s: float) -> str | None:
        return "stopped" if link.poll_command(wait_s) == CMD_STOP else None

    def body() -> None:
        client = connect(addresses.redis_url, wait=30.0)
        try:
            stats = serve_replay(config, client, addresses.run, seed, stop_check)
            link.send("replay_stopped", **stats)
        finally:
            client.close()

    _guard(link, body)
