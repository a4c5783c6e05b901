"""The replay service's two lists and its claim: sampling at the memory node.

With a replay service, the prioritized store lives next to Redis and only sampled batches travel
to the learner. Three keys per run, next to the experience list:

* ``rlfleet:{run}:samples`` -- sampled batches, service -> learner. The service pushes only while
  the list holds fewer than ``max_batches``, so the list never grows: a learner that stops
  pulling stops the sampling. The room check uses the length ``RPUSH`` returns, and an ``LLEN``
  only while the list is full: a plain ``RPUSH`` (no Lua script, which would make Redis copy
  each megabyte-sized batch into a Lua string). The bound is exact because one service at a
  time pushes (the claim below) and the learner only pops.
* ``rlfleet:{run}:priorities`` -- priority updates (and the learner's small "demand" messages),
  learner -> service. ``RPUSH`` + ``LTRIM`` in one transaction keep only the newest
  ``max_updates``; what is trimmed is counted (``evicted``). A lost priority update only leaves
  an item at its older priority.
* ``rlfleet:{run}:replay_owner`` -- which service instance serves the run, with a TTL: a second
  service for the same run waits (a hot standby) until the claim expires, so two replays never
  answer each other's priority updates.

Both directions are read with :class:`~rlfleet.transport.redis.RedisInbox` (``key=``): blocking
pops, validation, counted rejects, reconnect with backoff. Nothing here raises on an outage.
"""

from __future__ import annotations

import redis

from rlfleet.errors import ConfigError
from rlfleet.transport.redis.connection import RETRYABLE, describe, raise_if_fatal
from rlfleet.transport.redis.keys import check_name, key
from rlfleet.transport.retry import Backoff

# KEYS[1] claim; ARGV[1] owner id, ARGV[2] ttl ms. 1 if the claim is (now) ours, else 0.
_CLAIM = """
local owner = redis.call('GET', KEYS[1])
if owner == false or owner == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
  return 1
end
return 0
"""

# KEYS[1] claim; ARGV[1] owner id. Deletes the claim only if it is ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def samples_key(run: str) -> str:
    """The list of sampled batches (service -> learner)."""
    return key(run, "samples")


def priorities_key(run: str) -> str:
    """The list of priority updates and demand messages (learner -> service)."""
    return key(run, "priorities")


def owner_key(run: str) -> str:
    """Which replay service instance serves the run (a string with a TTL)."""
    return key(run, "replay_owner")


class _Failures:
    """Shared outage bookkeeping: count, remember, back off; fatal errors still raise."""

    def __init__(self, client: redis.Redis, backoff: Backoff | None) -> None:
        self._client = client
        self._where = describe(client)
        self._backoff = backoff or Backoff()
        self.errors = 0
        self.last_error = ""

    def _failed(self, exc: BaseException) -> None:
        raise_if_fatal(exc, self._where)
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        self._backoff.failed()


class BatchOutbox(_Failures):
    """The service's end of the samples list: :meth:`push` one encoded batch if there is room.

    Counters: ``pushed``, ``bytes_pushed``, ``full`` (pushes refused because the learner had
    ``max_batches`` waiting), ``errors`` (round trips that failed).
    """

    def __init__(
        self, client: redis.Redis, run: str, max_batches: int, backoff: Backoff | None = None
    ) -> None:
        if max_batches < 1:
            raise ConfigError(f"max_batches must be >= 1, got {max_batches!r}")
        super().__init__(client, backoff)
        self._key = samples_key(run)
        self.max_batches = max_batches
        # True when the list may be full (last reply, or not looked yet / after an outage: a
        # previous service instance may have left batches): look with LLEN before pushing
        self._maybe_full = True
        self.pushed = self.bytes_pushed = self.full = 0

    def push(self, payload: bytes) -> bool | None:
        """True when pushed, False when the list is full, None when Redis is unreachable (or a
        reconnect is not due yet): keep the batch and try again later."""
        if not self._backoff.ready():
            return None
        try:
            if self._maybe_full and int(self._client.llen(self._key)) >= self.max_batches:
                self._backoff.succeeded()
                self.full += 1
                return False
            length = int(self._client.rpush(self._key, payload))
        except RETRYABLE as exc:
            self._maybe_full = True
            self._failed(exc)
            return None
        self._backoff.succeeded()
        self._maybe_full = length >= self.max_batches
        self.pushed += 1
        self.bytes_pushed += len(payload)
        return True


class PriorityOutbox(_Failures):
    """The learner's end of the priorities list: :meth:`push` never blocks and never raises on
    an outage (the update is counted in ``errors`` or ``skipped`` and lost).

    Counters: ``pushed``, ``bytes_pushed``, ``evicted`` (trimmed because the service fell
    behind by more than ``max_updates``), ``skipped`` (not sent: reconnect not due), ``errors``.
    """

    def __init__(
        self, client: redis.Redis, run: str, max_updates: int = 256, backoff: Backoff | None = None
    ) -> None:
        if max_updates < 1:
            raise ConfigError(f"max_updates must be >= 1, got {max_updates!r}")
        super().__init__(client, backoff)
        self._key = priorities_key(run)
        self.max_updates = max_updates
        self.pushed = self.bytes_pushed = self.evicted = self.skipped = 0

    def push(self, payload: bytes) -> bool:
        """Send one message; False if it could not be sent."""
        if not self._backoff.ready():
            self.skipped += 1
            return False
        pipe = self._client.pipeline(transaction=True)
        pipe.rpush(self._key, payload)
        pipe.ltrim(self._key, -self.max_updates, -1)
        try:
            length = int(pipe.execute()[0])
        except RETRYABLE as exc:
            self._failed(exc)
            return False
        self._backoff.succeeded()
        self.evicted += max(0, length - self.max_updates)
        self.pushed += 1
        self.bytes_pushed += len(payload)
        return True


class ServiceClaim(_Failures):
    """One replay service's exclusive claim on a run (``SET`` with a TTL, owner-checked).

    :meth:`acquire` / :meth:`refresh` return True while the claim is ours, False when another
    instance holds it, and None when Redis is unreachable (unknown: keep serving; a restarted
    server lost the key, and the next refresh takes it again).
    """

    def __init__(
        self,
        client: redis.Redis,
        run: str,
        owner: str,
        ttl: float = 10.0,
        backoff: Backoff | None = None,
    ) -> None:
        if ttl <= 0:
            raise ConfigError(f"claim ttl must be > 0 seconds, got {ttl!r}")
        super().__init__(client, backoff)
        self.owner = check_name(owner, "replay service id")
        self._key = owner_key(run)
        self.ttl = ttl
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)

    def acquire(self) -> bool | None:
        """Take (or keep) the claim for another ``ttl`` seconds if nobody else holds it."""
        if not self._backoff.ready():
            return None
        try:
            ok = int(self._claim(keys=[self._key], args=[self.owner, max(1, int(self.ttl * 1000))]))
        except RETRYABLE as exc:
            self._failed(exc)
            return None
        self._backoff.succeeded()
        return bool(ok)

    refresh = acquire

    def holder(self) -> str | None:
        """The instance holding the claim (None: nobody, or unreachable)."""
        try:
            raw = self._client.get(self._key)
        except RETRYABLE as exc:
            self._failed(exc)
            return None
        return raw.decode(errors="replace") if raw is not None else None

    def release(self) -> None:
        """Give the claim up if it is still ours (a clean shutdown); best effort."""
        try:
            self._release(keys=[self._key], args=[self.owner])
        except RETRYABLE as exc:
            self._failed(exc)
