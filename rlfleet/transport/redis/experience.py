"""Experience over Redis: actors push codec messages onto one bounded list per run; the learner
pops them with a blocking wait.

The list ``rlfleet:{run}:experience`` never grows past ``max_queue`` messages. Two policies:

* ``when_full="block"`` (default, same behaviour as the local pipes): a Lua script pushes only
  while there is room, atomically, so concurrent actors cannot overshoot. When the learner falls
  behind (its samples-per-insert limiter stops reading), messages wait in the actor's small
  local backlog; once that is full, :meth:`RedisOutbox.push` blocks until the learner makes room
  -- backpressure, not memory growth. After ``block_timeout`` seconds (a learner that is gone)
  the actor drops its oldest message (counted) and carries on, so it can still see a stop flag.
* ``when_full="drop_oldest"``: push, then ``LTRIM`` to the newest ``max_queue`` messages in the
  same transaction; the server drops the stalest experience (counted as ``evicted``).

When Redis is unreachable the actor never blocks on it: messages wait in the local backlog
(bounded, the oldest dropped and counted), reconnects are spaced by a
:class:`~rlfleet.transport.retry.Backoff`, and the backlog is flushed, oldest first, once the
server answers again. Delivery is at most once: a message popped by a learner that then dies is
lost, which replay-based learning tolerates.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Any

import numpy as np
import redis

from rlfleet.errors import CodecError, ConfigError, TransportError
from rlfleet.transport.codec import DEFAULT_MAX_MESSAGE_BYTES, Message, decode, encode
from rlfleet.transport.redis.connection import RETRYABLE, blocking_limit, describe, raise_if_fatal
from rlfleet.transport.redis.keys import check_name, key
from rlfleet.transport.retry import Backoff

WHEN_FULL = ("block", "drop_oldest")
#: Payloads per round trip when flushing a backlog (bounded: Lua's unpack has a stack limit).
FLUSH_BATCH = 64

# KEYS[1] experience list, KEYS[2] per-actor push counters; ARGV[1] bound, ARGV[2] actor id,
# ARGV[3..] payloads oldest first. Returns how many were pushed (0 when the list is full).
_PUSH_IF_ROOM = """
local room = tonumber(ARGV[1]) - redis.call('LLEN', KEYS[1])
local n = math.min(room, #ARGV - 2)
if n <= 0 then return 0 end
redis.call('RPUSH', KEYS[1], unpack(ARGV, 3, n + 2))
redis.call('HINCRBY', KEYS[2], ARGV[2], n)
return n
"""


def experience_key(run: str) -> str:
    return key(run, "experience")


def pushed_key(run: str) -> str:
    """Hash of messages pushed per actor id (for status and benchmarks)."""
    return key(run, "pushed")


class RedisOutbox:
    """An actor's end of the experience list: ``push(bytes)`` like the local ``PipeOutbox``.

    Counters: ``pushed`` (messages that reached Redis), ``dropped`` (oldest discarded from the
    local backlog: outage, or a full queue for longer than ``block_timeout``), ``evicted``
    (trimmed by the server in ``drop_oldest`` mode, possibly other actors' messages), ``errors``
    (failed round trips), ``blocked_s`` (time spent waiting for room).
    """

    def __init__(
        self,
        client: redis.Redis,
        run: str,
        actor_id: str | int,
        *,
        max_queue: int = 1024,
        max_backlog: int = 256,
        when_full: str = "block",
        block_timeout: float = 30.0,
        backoff: Backoff | None = None,
    ) -> None:
        if when_full not in WHEN_FULL:
            raise ConfigError(f"when_full={when_full!r}; valid: {', '.join(WHEN_FULL)}")
        if max_queue < 1 or max_backlog < 1:
            raise ConfigError(
                f"max_queue and max_backlog must be >= 1, got {max_queue!r} and {max_backlog!r}"
            )
        self._client = client
        self._where = describe(client)
        self.actor_id = check_name(actor_id, "actor id")
        self._key = experience_key(run)
        self._pushed_key = pushed_key(run)
        self.max_queue, self.max_backlog = max_queue, max_backlog
        self.when_full, self.block_timeout = when_full, block_timeout
        self._backoff = backoff or Backoff()
        self._script = client.register_script(_PUSH_IF_ROOM)  # EVALSHA, reloaded after restarts
        self._backlog: deque[bytes] = deque()
        self._server_full = False
        self.pushed = self.dropped = self.evicted = self.errors = 0
        self.blocked_s = 0.0
        self.last_error = ""

    @property
    def backlog(self) -> int:
        """Messages waiting locally (server unreachable or full)."""
        return len(self._backlog)

    def push(self, payload: bytes) -> None:
        """Queue one encoded message and send what the server accepts. Never raises on an
        outage; blocks only for backpressure (see the module docstring)."""
        self._drain()
        if len(self._backlog) >= self.max_backlog and self._server_full:
            self._wait_for_room()
        if len(self._backlog) >= self.max_backlog:
            self._backlog.popleft()
            self.dropped += 1
        self._backlog.append(payload)
        self._drain()

    def send(self, kind: str, arrays: dict[str, np.ndarray] | None = None, **meta: Any) -> None:
        """Encode and push a message."""
        self.push(encode(kind, arrays, meta))

    def flush(self, timeout: float = 5.0) -> bool:
        """Try for up to ``timeout`` seconds to empty the backlog; True when it is empty."""
        deadline = time.monotonic() + timeout
        while self._backlog:
            self._drain()
            left = deadline - time.monotonic()
            if not self._backlog or left <= 0:
                break
            # sleep until the next reconnect is due, or briefly while the learner makes room
            time.sleep(min(left, self._backoff.remaining() or 0.01))
        return not self._backlog

    def close(self, timeout: float = 1.0) -> None:
        """Flush what can be flushed quickly; the pooled client stays open (it is shared)."""
        self.flush(timeout)

    # ---- internals ------------------------------------------------------------------------
    def _drain(self) -> None:
        """Move the backlog to Redis, oldest first, while the server answers and has room."""
        while self._backlog and self._backoff.ready():
            chunk = list(islice(self._backlog, 0, FLUSH_BATCH))
            try:
                sent = self._send(chunk)
            except RETRYABLE as exc:
                raise_if_fatal(exc, self._where)
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._backoff.failed()
                return
            self._backoff.succeeded()
            for _ in range(sent):
                self._backlog.popleft()
            self.pushed += sent
            self._server_full = sent < len(chunk)
            if self._server_full:
                return

    def _send(self, chunk: list[bytes]) -> int:
        if self.when_full == "block":
            return int(
                self._script(
                    keys=[self._key, self._pushed_key], args=[self.max_queue, self.actor_id, *chunk]
                )
            )
        pipe = self._client.pipeline(transaction=True)
        pipe.rpush(self._key, *chunk)
        pipe.ltrim(self._key, -self.max_queue, -1)
        pipe.hincrby(self._pushed_key, self.actor_id, len(chunk))
        length = int(pipe.execute()[0])
        self.evicted += max(0, length - self.max_queue)
        return len(chunk)

    def _wait_for_room(self) -> None:
        """Backpressure: wait (sleeping, growing to 50 ms) until the server takes messages."""
        start = time.monotonic()
        pause = 0.001
        while len(self._backlog) >= self.max_backlog and self._server_full:
            left = self.block_timeout - (time.monotonic() - start)
            if left <= 0:
                break
            time.sleep(min(pause, left))
            pause = min(2 * pause, 0.05)
            self._drain()
            if not self._backoff.ready():  # an outage, not a full queue: drop, do not block
                break
        self.blocked_s += time.monotonic() - start


def check_schema(message: Message, expect: Mapping[str, tuple[str, tuple[int, ...]]]) -> str:
    """Why ``message`` does not match ``expect`` (``name -> (dtype, per-item shape)``), or "".

    Every expected array must be present with that dtype and shape ``(n, *per_item)``, with one
    ``n`` shared by all of them (a batch of n transitions).
    """
    lengths: set[int] = set()
    for name, (dtype, item_shape) in expect.items():
        array = message.arrays.get(name)
        if array is None:
            return f"missing array {name!r}; expected {sorted(expect)}"
        if array.dtype.name != dtype or array.ndim < 1 or array.shape[1:] != tuple(item_shape):
            return (
                f"array {name!r} is {array.dtype.name}{list(array.shape)}, "
                f"expected {dtype}[n, {', '.join(map(str, item_shape))}]"
            )
        lengths.add(array.shape[0])
    if len(lengths) > 1:
        return f"arrays disagree on the batch length: {sorted(lengths)}"
    return ""


class RedisInbox:
    """The learner's end: ``pull(timeout, max_messages)`` like the local ``PipeInbox``.

    Blocks in Redis (``BLPOP``) for at most ``timeout`` seconds -- no polling. Anything that does
    not decode, has a foreign kind, is larger than ``max_bytes`` or (with ``expect``) has the
    wrong arrays is counted in ``rejected`` and dropped; ``last_error`` says why. An outage is
    counted in ``errors`` and yields ``[]`` after a backoff wait, so the learner keeps learning
    from what it has while Redis comes back. ``key`` pops another of the run's lists instead of
    the experience list (the replay service's sampled batches and priority updates).
    """

    def __init__(
        self,
        client: redis.Redis,
        run: str,
        kinds: Iterable[str] | None = ("experience",),
        max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        expect: Mapping[str, tuple[str, tuple[int, ...]]] | None = None,
        backoff: Backoff | None = None,
        key: str | None = None,
    ) -> None:
        self._client = client
        self._where = describe(client)
        self._key = key or experience_key(run)
        self._kinds = frozenset(kinds) if kinds else None
        self._max_bytes = max_bytes
        self._expect = dict(expect) if expect else None
        self._backoff = backoff or Backoff()
        self._block_limit = blocking_limit(client)
        self.rejected = self.received = self.bytes_received = self.errors = 0
        self.last_error = ""

    def pending(self) -> int:
        """Messages waiting in Redis (0 if unreachable)."""
        try:
            return int(self._client.llen(self._key))
        except RETRYABLE as exc:
            raise_if_fatal(exc, self._where)
            return 0

    def pull(self, timeout: float | None, max_messages: int = 64) -> list[Message]:
        """Up to ``max_messages`` messages, waiting at most ``timeout`` s (None: until one)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._backoff.ready():
            wait = self._backoff.remaining()
            time.sleep(wait if deadline is None else min(wait, max(0.0, timeout or 0.0)))
            if not self._backoff.ready():
                return []
        try:
            raws = self._pop(deadline, max_messages)
        except RETRYABLE as exc:
            raise_if_fatal(exc, self._where)
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._backoff.failed()
            return []
        self._backoff.succeeded()
        return self._decode(raws)

    def _pop(self, deadline: float | None, max_messages: int) -> list[bytes]:
        raws = self._client.lpop(self._key, max_messages) or []
        while not raws:
            if deadline is None:
                block = self._block_limit or 0.0  # 0 = forever (no socket timeout to respect)
            else:
                block = deadline - time.monotonic()
                if block <= 0:
                    return []
                if self._block_limit is not None:
                    block = min(block, self._block_limit)
                block = max(block, 0.001)  # BLPOP 0 would mean "forever"
            got = self._client.blpop([self._key], timeout=block)
            if got is not None:
                raws = [got[1]]
                if max_messages > 1:
                    raws += self._client.lpop(self._key, max_messages - 1) or []
        return raws

    def _decode(self, raws: list[bytes]) -> list[Message]:
        out: list[Message] = []
        for raw in raws:
            self.received += 1
            self.bytes_received += len(raw)
            try:
                message = decode(raw, self._max_bytes, self._kinds)
            except CodecError as exc:
                self.rejected += 1
                self.last_error = str(exc)
                continue
            if self._expect is not None:
                problem = check_schema(message, self._expect)
                if problem:
                    self.rejected += 1
                    self.last_error = problem
                    continue
            out.append(message)
        return out


def pushed_per_actor(client: redis.Redis, run: str) -> dict[str, int]:
    """Messages each actor id has pushed in this run (raises TransportError if unreachable)."""
    try:
        raw = client.hgetall(pushed_key(run))
    except RETRYABLE as exc:
        raise_if_fatal(exc, describe(client))
        raise TransportError(f"Redis at {describe(client)} is unreachable: {exc}") from exc
    return {k.decode(): int(v) for k, v in raw.items()}
