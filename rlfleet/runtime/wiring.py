"""Which transport carries a fleet's data plane: one factory per role, so the entry points in
:mod:`rlfleet.runtime.roles` never branch on the transport.

* ``local``: experience over authenticated Unix sockets, parameters in one shared-memory block.
* ``redis``: experience on the run's bounded list, parameters under the run's versioned keys,
  actors keep a heartbeat. Status and commands stay on the launcher's local sockets either way.

Redis is an optional extra, so it is imported only when a fleet asks for it. This module does not
import torch: the launcher uses :class:`FleetAddresses` and :class:`RedisRun` too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlfleet.errors import ConfigError, TransportError
from rlfleet.runtime.apex_config import ApexConfig

#: Seconds a role waits for Redis at start (a restarted actor may land in an outage).
CONNECT_WAIT_S = 30.0
#: Status messages from remote actors the server holds at most (older ones are trimmed).
MAX_EVENTS = 1000
#: Longest pause between reconnect attempts: short, so a restarted server is found quickly.
BACKOFF_CAP_S = 2.0


@dataclass(frozen=True)
class FleetAddresses:
    """Where the roles of one fleet meet.

    ``status``/``experience`` are Unix-socket paths, ``params_name`` the shared-memory block and
    ``authkey_hex`` the sockets' HMAC key. ``redis_url``/``run`` are set only for the Redis data
    plane; the URL (which may hold a password) travels to the roles as a process argument and is
    never written to the run folder.
    """

    status: str
    experience: str
    params_name: str
    authkey_hex: str
    redis_url: str = ""
    run: str = ""

    @property
    def authkey(self) -> bytes:
        return bytes.fromhex(self.authkey_hex)

    @property
    def over_redis(self) -> bool:
        return bool(self.redis_url)


@dataclass
class RoleEnds:
    """What one role is handed: its ends of the data plane, and how to let go of them."""

    params: Any
    outbox: Any = None
    inbox: Any = None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Release in reverse order of acquisition; a failure here must not mask the role's."""
        for closer in reversed(self.closers):
            try:
                closer()
            except Exception:
                pass


def check_service_config(config: Any) -> None:
    """Refuse what a replay service (``transport.replay_service``) cannot serve, before any
    process starts: it holds Ape-X replay only, and outside the learner's checkpoints."""
    tc = config.transport
    if not tc.replay_service:
        return
    if config.run.algorithm != "apex":
        raise ConfigError(
            f"transport.replay_service = true serves Ape-X replay; run.algorithm "
            f"{config.run.algorithm!r} has no replay (set transport.replay_service = false)"
        )
    if config.run.snapshot_replay:
        raise ConfigError(
            "run.snapshot_replay = true cannot be combined with transport.replay_service = "
            "true: the replay lives in the service, not in the learner's checkpoints"
        )


def experience_schema(
    obs_shape: tuple[int, ...], obs_dtype: np.dtype, one_step: bool = False
) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Arrays an experience message must carry (dtype name, per-item shape); anything else is
    rejected at the learner's boundary, before it reaches the replay. ``one_step``: DQfD's
    1-step target fields too."""
    obs = (np.dtype(obs_dtype).name, tuple(obs_shape))
    schema = {
        "obs": obs,
        "next_obs": obs,
        "action": ("int64", ()),
        "reward": ("float32", ()),
        "discount": ("float32", ()),
        "priority": ("float32", ()),
    }
    if one_step:
        schema.update(reward_1=("float32", ()), discount_1=("float32", ()), next_obs_1=obs)
    return schema


# ---- local ------------------------------------------------------------------------------------
class _LazyParams:
    """Attaches to the parameter block on first use (its size is known only after the role has
    built its network); the learner creates it, so wait for it while roles start in any order."""

    def __init__(self, name: str, link: Any, timeout: float = 120.0) -> None:
        self._name, self._link, self._timeout = name, link, timeout
        self._params: Any = None

    def _attach(self, size: int) -> Any:
        from rlfleet.transport.local import SharedParams

        deadline = time.monotonic() + self._timeout
        while True:
            try:
                return SharedParams.attach(self._name, size)
            except TransportError:
                if time.monotonic() > deadline or self._link.poll_command(0.05) == "stop":
                    raise

    def fetch_if_newer(self, have_version: int, out: np.ndarray) -> int | None:
        if self._params is None:
            self._params = self._attach(out.shape[0])
        return self._params.fetch_if_newer(have_version, out)


class _CreatingParams:
    """The learner's side of the local block: creates it on the first publish."""

    def __init__(self, name_hint: str) -> None:
        self.name_hint = name_hint
        self.block: Any = None

    def publish(self, flat: np.ndarray, version: int) -> None:
        from rlfleet.transport.local import SharedParams

        if self.block is None:
            self.block = SharedParams.create(flat.shape[0], name=self.name_hint)
        self.block.publish(flat, version)

    def close(self) -> None:
        if self.block is not None:
            self.block.close()


# ---- redis ------------------------------------------------------------------------------------
def _redis_client(addresses: FleetAddresses) -> Any:
    from rlfleet.transport.redis import connect

    return connect(addresses.redis_url, wait=CONNECT_WAIT_S)


def _backoff() -> Any:
    from rlfleet.transport.retry import Backoff

    return Backoff(cap=BACKOFF_CAP_S)


class _RedisActorEnd:
    """An actor's outbox and parameter source over Redis, refreshing its heartbeat on both
    paths (the beat itself is rate-limited, so calling it per push costs nothing)."""

    def __init__(self, config: ApexConfig, addresses: FleetAddresses, member: str | int) -> None:
        from rlfleet.transport.redis import Heartbeat, RedisOutbox, RedisParams

        tc = config.transport
        client = _redis_client(addresses)
        self._outbox = RedisOutbox(
            client,
            addresses.run,
            actor_id=member,
            max_queue=tc.max_queue,
            max_backlog=tc.max_backlog,
            block_timeout=tc.block_timeout_s,
            backoff=_backoff(),
        )
        self._params = RedisParams(client, addresses.run, backoff=_backoff())
        self.heartbeat = Heartbeat(client, addresses.run, member, group="actors")

    @property
    def dropped(self) -> int:
        return self._outbox.dropped

    @property
    def backlog(self) -> int:
        return self._outbox.backlog

    def push(self, payload: bytes) -> None:
        self.heartbeat.beat()
        self._outbox.push(payload)

    def fetch_if_newer(self, have_version: int, out: np.ndarray) -> int | None:
        self.heartbeat.beat()
        return self._params.fetch_if_newer(have_version, out)

    def close(self) -> None:
        self._outbox.close()  # flushes for up to a second, then stops its sender thread
        self._params.close()
        self.heartbeat.leave()


class RedisStatusLink:
    """A remote actor's status link: reports go up a bounded Redis list that the learner host's
    launcher drains; the only command is "stop", read from the run's stop flag.

    Neither direction raises on an outage: a report that cannot be sent is dropped (the next one
    carries the cumulative counters), and an unreadable flag means "keep going".
    """

    def __init__(self, client: Any, run: str, member: str, check_interval: float = 0.5) -> None:
        from rlfleet.transport.redis import RunStatus
        from rlfleet.transport.redis.keys import key

        self._client, self.member = client, member
        self._events = key(run, "events")
        self._status = RunStatus(client, run)
        self._check_interval = check_interval
        self._last_check = float("-inf")
        self.errors = 0

    def send(self, kind: str, **meta: Any) -> None:
        from rlfleet.transport.codec import encode
        from rlfleet.transport.redis.connection import RETRYABLE, raise_if_fatal

        payload = encode(kind, None, {"role": "actor", "member": self.member, **meta})
        pipe = self._client.pipeline(transaction=True)
        pipe.rpush(self._events, payload)
        pipe.ltrim(self._events, -MAX_EVENTS, -1)  # bounded even with nobody reading
        try:
            pipe.execute()
        except RETRYABLE as exc:
            raise_if_fatal(exc, self.member)
            self.errors += 1

    def poll_command(self, timeout: float = 0.0) -> str | None:
        from rlfleet.runtime.links import CMD_STOP

        if timeout > 0:
            time.sleep(timeout)  # the flag is a key, there is nothing to block on
        now = time.monotonic()
        if now - self._last_check < self._check_interval:
            return None
        self._last_check = now
        return CMD_STOP if self._status.stop_requested() else None


def run_events(client: Any, run: str, max_messages: int = 256) -> list[bytes]:
    """Drain up to ``max_messages`` status messages of remote actors ([] if unreachable)."""
    from rlfleet.transport.redis.connection import RETRYABLE, describe, raise_if_fatal
    from rlfleet.transport.redis.keys import key

    try:
        return list(client.lpop(key(run, "events"), max_messages) or [])
    except RETRYABLE as exc:
        raise_if_fatal(exc, describe(client))
        return []


# ---- one factory per role ---------------------------------------------------------------------
def actor_ends(
    config: ApexConfig, addresses: FleetAddresses, link: Any, member: str | int
) -> RoleEnds:
    """An actor's outbox (``push``) and parameter source (``fetch_if_newer``); ``member`` is
    its id in the run (the local index, or a remote actor's run-wide id)."""
    if addresses.over_redis:
        end = _RedisActorEnd(config, addresses, member)
        return RoleEnds(params=end, outbox=end, closers=[end.close])
    from rlfleet.runtime.links import connect
    from rlfleet.transport.local import PipeOutbox

    outbox = PipeOutbox(connect(addresses.experience, addresses.authkey))
    return RoleEnds(params=_LazyParams(addresses.params_name, link), outbox=outbox)


def evaluator_ends(config: ApexConfig, addresses: FleetAddresses, link: Any) -> RoleEnds:
    """The evaluator's parameter source."""
    if addresses.over_redis:
        from rlfleet.transport.redis import RedisParams

        params = RedisParams(_redis_client(addresses), addresses.run, backoff=_backoff())
        return RoleEnds(params=params)
    return RoleEnds(params=_LazyParams(addresses.params_name, link))


def learner_ends(config: ApexConfig, addresses: FleetAddresses, seed: int) -> RoleEnds:
    """The learner's inbox (``pull``/``rejected``) and parameter sink (``publish``)."""
    if addresses.over_redis:
        from rlfleet.envs import make_vector_env
        from rlfleet.transport.redis import RedisInbox, RedisParams

        if config.run.algorithm == "impala":  # unrolls; the IMPALA learner checks their arrays
            client = _redis_client(addresses)
            inbox = RedisInbox(client, addresses.run, kinds=("unroll",), backoff=_backoff())
            params = RedisParams(client, addresses.run, backoff=_backoff())
            return RoleEnds(params=params, inbox=inbox)
        probe = make_vector_env(config.env.id, 1, seed, env_kwargs=config.env.kwargs or None)
        from rlfleet.runtime.stores import wants_one_step

        schema = experience_schema(probe.obs_shape, probe.obs_dtype, wants_one_step(config))
        probe.close()
        client = _redis_client(addresses)
        if config.transport.replay_service:  # batches from the service instead of experience
            from rlfleet.runtime.remote_replay import learner_store

            store = learner_store(config, client, addresses.run, probe.obs_shape, probe.obs_dtype)
            params = RedisParams(client, addresses.run, backoff=_backoff())
            return RoleEnds(params=params, inbox=store)  # the learner takes it as its store
        inbox = RedisInbox(client, addresses.run, expect=schema, backoff=_backoff())
        params = RedisParams(client, addresses.run, backoff=_backoff())
        return RoleEnds(params=params, inbox=inbox)
    from rlfleet.runtime.links import AcceptLoop
    from rlfleet.transport.local import PipeInbox

    inbox = PipeInbox(kinds={"unroll" if config.run.algorithm == "impala" else "experience"})
    accept = AcceptLoop(addresses.experience, addresses.authkey, inbox.add)
    sink = _CreatingParams(addresses.params_name)
    return RoleEnds(params=sink, inbox=inbox, closers=[sink.close, accept.close])


# ---- the launcher's hold on a run's namespace -------------------------------------------------
class RedisRun:
    """The launcher's side of a Redis run: claims the name, clears stale keys, keeps a
    heartbeat while the fleet runs, and at the end raises the stop flag and deletes the keys.

    A second fleet under the same run name while this one is alive would mix two learners'
    parameters, so it is refused (the heartbeat in the ``learners`` group says who holds it).
    """

    MEMBER = "launcher"
    #: Seconds between two writes of the run's counters into the status hash (one HSET each).
    COUNTERS_INTERVAL_S = 1.0

    def __init__(self, url: str, run: str, config_json: str, keep_keys: bool = False) -> None:
        from rlfleet.transport.redis import (
            Heartbeat,
            RunStatus,
            alive_members,
            connect,
            delete_run,
            prefix,
            redact_url,
        )
        from rlfleet.transport.redis.keys import key

        self.prefix = prefix(run)  # validates the name (ConfigError names the allowed form)
        self.run, self.keep_keys = run, keep_keys
        self.client = connect(url, wait=10.0)
        holders = alive_members(self.client, run, "learners")
        if holders:
            raise ConfigError(
                f"run {run!r} is already running on Redis at {redact_url(url)} (live members: "
                f"{', '.join(holders)}); pick another name with --run NAME or stop that run"
            )
        delete_run(self.client, run)  # a reused name starts clean: no stale params or experience
        # the resolved config, for actors that join from other hosts (no secrets in it)
        self.client.set(key(run, "config"), config_json)
        self.heartbeat = Heartbeat(self.client, run, self.MEMBER, group="learners")
        self.heartbeat.beat(force=True)
        self._tried = time.monotonic()
        self.status = RunStatus(self.client, run)
        self._counters: dict[str, int] = {}
        self._counters_at = float("-inf")

    def beat(self) -> None:
        """Refresh the claim. Tried at most every few seconds whether or not the last try
        worked: an unreachable server must not stall the launcher's supervision loop."""
        now = time.monotonic()
        if now - self._tried >= self.heartbeat.ttl / 3:
            self._tried = now
            self.heartbeat.beat(force=True)

    def publish_counters(self, **counters: int) -> bool:
        """Write the run's counters (``env_steps``, ``updates``, ``learner_version``) into the
        status hash for roles on other hosts -- ``rlfleet evaluator`` labels its rows with them.
        Written at most every ``COUNTERS_INTERVAL_S`` (the launcher calls this on every beat);
        True when written. Best effort: an outage is counted by ``status.errors``."""
        self._counters = dict(counters)
        now = time.monotonic()
        if now - self._counters_at < self.COUNTERS_INTERVAL_S:
            return False
        self._counters_at = now
        return self.status.update(**self._counters, counters_at=round(time.time(), 3))

    def request_stop(self, reason: str) -> None:
        """Tell actors on other hosts to finish (they poll the flag); best effort."""
        self.status.request_stop(reason)

    def events(self) -> list[bytes]:
        """Status messages from remote actors since the last call."""
        return run_events(self.client, self.run)

    def finish(self, reason: str, wait_for_actors_s: float = 0.0) -> str:
        """Raise the stop flag, leave, delete the keys unless kept; '' or what went wrong.

        Actors on other hosts end on the flag, but one blocked on a full queue notices only
        after its ``block_timeout``, and would then flush into a deleted namespace (leaving
        stray keys): so wait up to ``wait_for_actors_s`` for their heartbeats to leave first.
        """
        from rlfleet.transport.redis import alive_actors, alive_members, delete_run

        try:
            if self._counters:  # the final counts, which the rate limit may have held back
                self.status.update(**self._counters, counters_at=round(time.time(), 3))
            self.status.request_stop(reason)
            deadline = time.monotonic() + wait_for_actors_s
            while time.monotonic() < deadline and (
                alive_actors(self.client, self.run)
                or alive_members(self.client, self.run, "replay")
            ):
                time.sleep(0.2)  # remote processes: nothing local to wait on
            self.heartbeat.leave()
            if not self.keep_keys:
                delete_run(self.client, self.run)
        except TransportError as exc:  # Redis away at the very end: the run itself is done
            return f"could not clean up the run's Redis keys: {exc}"
        finally:
            self.client.close()
        return ""


def open_redis_run(
    config: ApexConfig, url: str | None, run_dir: str, config_json: str
) -> RedisRun | None:
    """A :class:`RedisRun` when the config asks for the Redis transport, else None."""
    check_service_config(config)
    if config.transport.kind != "redis":
        return None
    if not url:
        raise ConfigError(
            "transport.kind is 'redis' but no Redis URL was given; pass --redis "
            "redis://[:PASSWORD@]HOST:6379/0 (or set RLFLEET_REDIS_URL)"
        )
    from pathlib import Path

    run = config.transport.run or Path(run_dir).resolve().name
    return RedisRun(url, run, config_json, keep_keys=config.transport.keep_keys)
