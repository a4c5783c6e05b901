"""Who is in the run, and is it still running: heartbeats and the run-status hash.

* A member (actor, evaluator, ...) keeps a key ``rlfleet:{run}:{group}:{id}`` alive with a TTL
  and adds its id to the set ``rlfleet:{run}:{group}``. A member that dies simply stops beating;
  Redis expires its key on the server's clock, so host clock skew does not matter. The set is an
  index (no ``KEYS``/``SCAN`` over the whole server); stale ids are pruned when read.
* ``rlfleet:{run}:status`` is a hash any role can read: the learner writes its version and
  counters, and ``stop=1`` tells roles on other hosts that the run is over.

Heartbeats and status reads never raise on an outage (counted in ``errors``): a role on a host
that lost Redis for a while keeps working and rejoins when the server is back.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Mapping

import redis

from rlfleet.errors import ConfigError, TransportError
from rlfleet.transport.redis.connection import RETRYABLE, describe, raise_if_fatal
from rlfleet.transport.redis.keys import check_name, key, prefix

GROUPS = ("actors", "evaluators", "learners", "replay")


def _group(group: str) -> str:
    if group not in GROUPS:
        raise ConfigError(f"member group {group!r}; valid: {', '.join(GROUPS)}")
    return group


class Heartbeat:
    """Registration of one member with a TTL; call :meth:`beat` as often as convenient.

    :meth:`beat` talks to Redis at most every ``ttl / 3`` seconds (unless forced), so calling it
    from an actor's step loop costs nothing; a member is seen as dead ``ttl`` seconds after its
    last successful beat.
    """

    def __init__(
        self,
        client: redis.Redis,
        run: str,
        member_id: str | int,
        *,
        group: str = "actors",
        ttl: float = 15.0,
        info: Mapping[str, str | int | float] | None = None,
    ) -> None:
        if ttl <= 0:
            raise ConfigError(f"heartbeat ttl must be > 0 seconds, got {ttl!r}")
        self._client = client
        self._where = describe(client)
        self.member_id = check_name(member_id, "member id")
        self._group = _group(group)
        self._key = key(run, self._group, self.member_id)
        self._index = key(run, self._group)
        self.ttl = ttl
        # plain JSON of strings and numbers: readable with redis-cli, nothing to execute
        self._value = json.dumps(
            {"host": socket.gethostname(), "started": time.time(), **dict(info or {})}
        )
        self._last = float("-inf")
        self.errors = 0
        self.last_error = ""

    def beat(self, force: bool = False) -> bool:
        """Refresh the TTL (if due); True when the server acknowledged a refresh."""
        now = time.monotonic()
        if not force and now - self._last < self.ttl / 3:
            return False
        pipe = self._client.pipeline(transaction=True)
        pipe.set(self._key, self._value, px=max(1, int(self.ttl * 1000)))
        pipe.sadd(self._index, self.member_id)
        try:
            pipe.execute()
        except RETRYABLE as exc:
            raise_if_fatal(exc, self._where)
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False
        self._last = now
        return True

    def leave(self) -> None:
        """Deregister at once (a clean shutdown); best effort."""
        pipe = self._client.pipeline(transaction=True)
        pipe.delete(self._key)
        pipe.srem(self._index, self.member_id)
        try:
            pipe.execute()
        except RETRYABLE as exc:
            raise_if_fatal(exc, self._where)
        self._last = float("-inf")


def alive_members(client: redis.Redis, run: str, group: str = "actors") -> list[str]:
    """Ids whose heartbeat has not expired, sorted; prunes expired ids from the index."""
    index = key(run, _group(group))
    try:
        ids = sorted(m.decode() for m in client.smembers(index))
        if not ids:
            return []
        pipe = client.pipeline(transaction=False)
        for member in ids:
            pipe.exists(key(run, group, member))
        alive = [m for m, ok in zip(ids, pipe.execute(), strict=True) if ok]
        dead = sorted(set(ids) - set(alive))
        if dead:
            client.srem(index, *dead)
    except RETRYABLE as exc:
        raise_if_fatal(exc, describe(client))
        raise TransportError(f"Redis at {describe(client)} is unreachable: {exc}") from exc
    return alive


def alive_actors(client: redis.Redis, run: str) -> list[str]:
    """Actor ids with a live heartbeat."""
    return alive_members(client, run, "actors")


class RunStatus:
    """The run-status hash ``rlfleet:{run}:status`` (all values are strings on the wire)."""

    def __init__(self, client: redis.Redis, run: str) -> None:
        self._client = client
        self._where = describe(client)
        self.key = key(run, "status")
        self.errors = 0
        self.last_error = ""

    def update(self, **fields: str | int | float) -> bool:
        """Set fields (e.g. ``learner_version=12``); False if Redis was unreachable."""
        if not fields:
            return True
        try:
            self._client.hset(self.key, mapping={k: str(v) for k, v in fields.items()})
        except RETRYABLE as exc:
            self._failed(exc)
            return False
        return True

    def read(self) -> dict[str, str] | None:
        """All fields, or None if Redis was unreachable."""
        try:
            raw = self._client.hgetall(self.key)
        except RETRYABLE as exc:
            self._failed(exc)
            return None
        return {k.decode(): v.decode(errors="replace") for k, v in raw.items()}

    def request_stop(self, reason: str = "") -> bool:
        """Tell every role of the run to finish (``stop=1``)."""
        return self.update(stop=1, stop_reason=reason, stop_at=time.time())

    def stop_requested(self) -> bool:
        """True once someone requested a stop; False also while Redis is unreachable."""
        try:
            return self._client.hget(self.key, "stop") == b"1"
        except RETRYABLE as exc:
            self._failed(exc)
            return False

    def _failed(self, exc: BaseException) -> None:
        raise_if_fatal(exc, self._where)
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"


def delete_run(client: redis.Redis, run: str) -> int:
    """Delete every key of ``run`` (a fresh start under a reused name); returns how many."""
    deleted = 0
    try:
        batch: list[bytes] = []
        for name in client.scan_iter(match=prefix(run) + "*", count=500):
            batch.append(name)
            if len(batch) >= 500:
                deleted += int(client.delete(*batch))
                batch.clear()
        if batch:
            deleted += int(client.delete(*batch))
    except RETRYABLE as exc:
        raise_if_fatal(exc, describe(client))
        raise TransportError(f"Redis at {describe(client)} is unreachable: {exc}") from exc
    return deleted
