"""An actor's end of the experience list: :class:`RedisOutbox` and its sender thread.

The outbox hands each message to a sender thread and returns: the actor goes back to its
environments while the message travels, and whatever queued up during one round trip leaves in
the next one (one ``RPUSH`` with several messages). Pushing through plain ``RPUSH`` matters for
big messages: the Lua "push if room" script this replaced made Redis copy every argument into a
Lua string (4-8 ms of the server's only thread per 2.8 MB frame batch, against ~1 ms for
``RPUSH``).

The list ``rlfleet:{run}:experience`` is bounded by ``max_queue``. Two policies:

* ``when_full="block"`` (default, same behaviour as the local pipes): the sender pushes at most
  as many messages as the list had room for at its last look (the length ``RPUSH`` returns, or
  an ``LLEN`` while the list is full). Several actors can each see the same room, so the bound is
  soft: the list may exceed ``max_queue`` by at most one chunk per actor (a single actor never
  overshoots). When the learner falls behind, messages wait in the actor's small local backlog;
  once that is full, :meth:`RedisOutbox.push` blocks until the learner makes room --
  backpressure, not memory growth. After ``block_timeout`` seconds of a full list (a learner that
  is gone) the actor drops its oldest message (counted) and carries on, so it can still see a
  stop flag.
* ``when_full="drop_oldest"``: push, then ``LTRIM`` to the newest ``max_queue`` messages in the
  same transaction; the server drops the stalest experience (counted as ``evicted``).

When Redis is unreachable the actor never waits for it beyond one connection attempt already
under way: messages wait in the local backlog (bounded, the oldest dropped and counted),
reconnects are spaced by a :class:`~rlfleet.transport.retry.Backoff`, and the backlog is sent,
oldest first, once the server answers again. Delivery is at most once: a message popped by a
learner that then dies is lost, which replay-based learning tolerates.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

import numpy as np
import redis

from rlfleet.errors import CodecError, ConfigError, TransportError
from rlfleet.transport.codec import encode, read_meta
from rlfleet.transport.redis.connection import RETRYABLE, describe, raise_if_fatal
from rlfleet.transport.redis.keys import check_name, experience_key, pushed_key
from rlfleet.transport.redis.resp import pack
from rlfleet.transport.retry import Backoff

WHEN_FULL = ("block", "drop_oldest")
#: Messages per round trip at most (one RPUSH carries them all).
FLUSH_BATCH = 64
#: Bytes per round trip at most (at least one message): a few frame batches, not the backlog.
CHUNK_BYTES = 8 << 20
#: Longest pause between two looks at a full list (the first look comes after 1 ms).
FULL_PAUSE_CAP_S = 0.05
#: A sender thread with nothing to send for this long ends; the next push starts another.
IDLE_EXIT_S = 10.0


def _env_steps(payload: bytes) -> int:
    """The ``env_steps`` a message's metadata declares (0 if none, or unreadable)."""
    try:
        steps = read_meta(payload).get("env_steps", 0)
    except CodecError:
        return 0
    return steps if isinstance(steps, int) and not isinstance(steps, bool) and steps > 0 else 0


class RedisOutbox:
    """An actor's end of the experience list: ``push(bytes)`` like the local ``PipeOutbox``.

    :meth:`push` queues the message for the sender thread and returns at once unless the local
    backlog is full (then it waits for room, see the module docstring); :meth:`flush` waits until
    everything queued has reached Redis. A fatal failure in the sender (wrong password, a key of
    the wrong type) is raised by the next :meth:`push` or :meth:`flush`.

    Counters: ``pushed`` (messages that reached Redis), ``dropped`` (oldest discarded from the
    local backlog: outage, or a full queue for longer than ``block_timeout``), ``dropped_steps``
    (the ``env_steps`` the dropped messages' metadata declared: the actor does not count them
    toward the run's budget), ``evicted``
    (trimmed by the server in ``drop_oldest`` mode, possibly other actors' messages), ``errors``
    (failed round trips), ``blocked_s`` (time :meth:`push` spent waiting for room),
    ``round_trips`` (sends; ``pushed / round_trips`` is the mean messages per round trip).
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
        self._backoff = backoff or Backoff()  # touched by the sender thread only
        # Everything below is shared with the sender thread and guarded by this condition;
        # it is notified whenever the backlog, the server state or the sender changes.
        self._cond = threading.Condition()
        self._queue: deque[bytes] = deque()  # not sent yet, oldest first
        self._inflight: list[bytes] = []  # the chunk the sender is sending (older than _queue)
        # "unknown": look (LLEN) before pushing; "ok": room for ``_room`` more; "full": look
        # again at ``_look_at``; "down": retry when the backoff allows. drop_oldest: ok / down.
        self._state = "unknown" if when_full == "block" else "ok"
        self._room = 0
        self._look_at = 0.0
        self._pause = 0.001
        self._sender: threading.Thread | None = None
        # the sender's own connection (the pool's settings): its RPUSH is packed by hand
        pool = client.connection_pool
        self._conn: Any = pool.connection_class(**pool.connection_kwargs)
        self._stop = False
        self._fatal: BaseException | None = None
        self.pushed = self.dropped = self.evicted = self.errors = self.round_trips = 0
        self.dropped_steps = 0
        self.blocked_s = 0.0
        self.last_error = ""

    @property
    def backlog(self) -> int:
        """Messages not in Redis yet (queued locally or being sent)."""
        with self._cond:
            return len(self._queue) + len(self._inflight)

    def push(self, payload: bytes) -> None:
        """Queue one encoded message for the sender. Never raises on an outage; blocks only
        for backpressure (see the module docstring)."""
        with self._cond:
            self._raise_fatal()
            if len(self._queue) + len(self._inflight) >= self.max_backlog:
                self._make_room()
            self._queue.append(payload)
            self._start_sender()
            self._cond.notify_all()

    def send(self, kind: str, arrays: dict[str, np.ndarray] | None = None, **meta: Any) -> None:
        """Encode and push a message."""
        self.push(encode(kind, arrays, meta))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait up to ``timeout`` seconds for the backlog to reach Redis; True when it is empty."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._inflight:
                self._raise_fatal()
                self._start_sender()
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            self._raise_fatal()
            return not (self._queue or self._inflight)

    def close(self, timeout: float = 1.0) -> None:
        """Flush what can be flushed quickly and stop the sender (the pooled client stays open:
        it is shared). A later push starts a new sender."""
        self.flush(timeout)
        with self._cond:
            self._stop = True
            sender = self._sender
            self._cond.notify_all()
        if sender is not None and sender is not threading.current_thread():
            sender.join(timeout)
        if not sender or not sender.is_alive():
            self._conn.disconnect()  # a later push reconnects

    # ---- the caller's side -------------------------------------------------------------------
    def _raise_fatal(self) -> None:
        if isinstance(self._fatal, TransportError):
            raise self._fatal
        if self._fatal is not None:
            raise TransportError(
                f"pushing experience to Redis at {self._where} failed: {self._fatal}"
            ) from self._fatal

    def _start_sender(self) -> None:
        self._stop = False
        if self._sender is None and self._fatal is None:
            self._sender = threading.Thread(
                target=self._run, name=f"rlfleet-outbox-{self.actor_id}", daemon=True
            )
            self._sender.start()

    def _make_room(self) -> None:
        """Wait until the backlog has room. Drop the oldest queued message instead when Redis
        is down, or when the list has been full for ``block_timeout`` -- but never one that is
        being sent (the attempt under way may still deliver it): wait for its outcome."""
        start = time.monotonic()
        deadline = start + self.block_timeout
        while len(self._queue) + len(self._inflight) >= self.max_backlog:
            self._raise_fatal()
            self._start_sender()
            now = time.monotonic()
            idle = not self._inflight
            if idle and (self._state == "down" or (self._state == "full" and now >= deadline)):
                self.dropped_steps += _env_steps(self._queue.popleft())
                self.dropped += 1
                break
            # woken by the sender's progress; the timeout only re-checks the deadline
            self._cond.wait(max(0.001, deadline - now) if now < deadline else 0.05)
        self.blocked_s += time.monotonic() - start

    # ---- the sender thread -------------------------------------------------------------------
    def _due_in(self, now: float) -> float | None:
        """Seconds until the sender has something to do (None: nothing queued)."""
        if not self._queue:
            return None
        if self._state == "down":
            return self._backoff.remaining()
        if self._state == "full":
            return max(0.0, self._look_at - now)
        return 0.0

    def _run(self) -> None:
        idle_since = time.monotonic()
        while True:
            with self._cond:
                now = time.monotonic()
                wait = self._due_in(now)
                if self._stop or (wait is None and now - idle_since >= IDLE_EXIT_S):
                    self._sender = None
                    self._cond.notify_all()
                    return
                if wait is None or wait > 0:
                    self._cond.wait(IDLE_EXIT_S if wait is None else wait)
                    continue
                idle_since = now
                look = self.when_full == "block" and self._state != "ok"
                if not look:
                    self._inflight = self._take_chunk()
            try:
                if look:
                    self._look()
                else:
                    self._send(self._inflight)
            except RETRYABLE as exc:
                try:
                    raise_if_fatal(exc, self._where)
                except TransportError as fatal:  # wrong password, TLS trust: no retry helps
                    self._end(fatal)
                    return
                self._failed(exc)
            except BaseException as exc:  # a server error reply (e.g. WRONGTYPE): a bug
                self._end(exc)
                return

    def _take_chunk(self) -> list[bytes]:
        """The oldest queued messages that fit one round trip (and the room last seen)."""
        limit = FLUSH_BATCH if self.when_full != "block" else min(FLUSH_BATCH, self._room)
        chunk = [self._queue.popleft()]
        size = len(chunk[0])
        while self._queue and len(chunk) < limit and size + len(self._queue[0]) <= CHUNK_BYTES:
            size += len(self._queue[0])
            chunk.append(self._queue.popleft())
        return chunk

    def _look(self) -> None:
        """LLEN: how much room the list has now (before the first push, after an outage, and
        while it is full)."""
        length = int(self._client.llen(self._key))
        with self._cond:
            self._backoff.succeeded()
            self._set_room(length)
            self._cond.notify_all()

    def _set_room(self, length: int) -> None:
        self._room = self.max_queue - length
        if self._room > 0:
            self._state, self._pause = "ok", 0.001
        else:  # look again after a pause that grows while the list stays full
            self._state = "full"
            self._look_at = time.monotonic() + self._pause
            self._pause = min(2 * self._pause, FULL_PAUSE_CAP_S)

    def _send(self, chunk: list[bytes]) -> None:
        """One round trip: RPUSH of the whole chunk, and the per-actor counter. Not a MULTI
        transaction in block mode: the counter is bookkeeping, and RPUSH's reply (the new
        length) is all the room check needs. Packed by :func:`~.resp.pack` on the sender's own
        connection (2-3x less client CPU than a redis-py pipeline for many messages)."""
        block = self.when_full == "block"
        if block:
            length = self._rpush(chunk)
        else:  # trimming must be atomic with the push: a MULTI pipeline
            pipe = self._client.pipeline(transaction=True)
            pipe.rpush(self._key, *chunk)
            pipe.ltrim(self._key, -self.max_queue, -1)
            pipe.hincrby(self._pushed_key, self.actor_id, len(chunk))
            length = int(pipe.execute()[0])
        with self._cond:
            self._backoff.succeeded()
            self._inflight = []
            self.pushed += len(chunk)
            self.round_trips += 1
            if block:
                self._set_room(length)
            else:
                self._state = "ok"
                self.evicted += max(0, length - self.max_queue)
            self._cond.notify_all()

    def _rpush(self, chunk: list[bytes]) -> int:
        conn = self._conn
        counter = ("HINCRBY", self._pushed_key, self.actor_id, len(chunk))
        try:  # send_packed_command connects (and authenticates) first when needed
            conn.send_packed_command(pack(("RPUSH", self._key, *chunk), counter))
            length = int(conn.read_response())
            conn.read_response()
        except BaseException:  # a reply may still be unread: start afresh next time
            conn.disconnect()
            raise
        return length

    def _requeue(self) -> None:
        """Put a chunk whose round trip failed back in front (it is older than the queue)."""
        self._queue.extendleft(reversed(self._inflight))
        self._inflight = []

    def _failed(self, exc: BaseException) -> None:
        """A round trip failed (outage): keep the chunk, back off, count."""
        with self._cond:
            self._requeue()
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._backoff.failed()
            self._state = "down"
            self._cond.notify_all()

    def _end(self, exc: BaseException) -> None:
        """The sender stops on an error retrying cannot fix; the caller raises it."""
        with self._cond:
            self._requeue()
            self._fatal = exc
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._sender = None
            self._cond.notify_all()
