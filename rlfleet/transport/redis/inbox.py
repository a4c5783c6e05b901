"""The learner's end of the experience list: :class:`RedisInbox` pops codec messages with a
blocking wait, and any of the run's other lists the same way (``key=``)."""

from __future__ import annotations

import time
from collections.abc import Iterable

import redis

from rlfleet.transport.codec import DEFAULT_MAX_MESSAGE_BYTES, Message
from rlfleet.transport.redis.connection import RETRYABLE, blocking_limit, describe, raise_if_fatal
from rlfleet.transport.redis.keys import experience_key
from rlfleet.transport.retry import Backoff
from rlfleet.transport.schema import ContentCheck, MessageGate, Schema


class RedisInbox:
    """The learner's end: ``pull(timeout, max_messages)`` like the local ``PipeInbox``.

    Blocks in Redis (``BLPOP``) for at most ``timeout`` seconds -- no polling. Every message
    passes the :class:`~rlfleet.transport.schema.MessageGate` (codec within ``max_bytes``, kinds,
    metadata counters, the ``expect`` schema, the ``check`` of contents); what fails is counted
    in ``rejected`` (by reason in ``gate.rejected_by_reason``) and dropped, ``last_error`` says
    why. An outage is counted in ``errors`` (``last_outage`` says what) and yields ``[]`` after a
    backoff wait, so the learner keeps learning
    from what it has while Redis comes back. ``key`` pops another of the run's lists instead of
    the experience list (the replay service's sampled batches and priority updates).
    """

    def __init__(
        self,
        client: redis.Redis,
        run: str,
        kinds: Iterable[str] | None = ("experience",),
        max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        expect: Schema | None = None,
        backoff: Backoff | None = None,
        key: str | None = None,
        check: ContentCheck | None = None,
    ) -> None:
        self._client = client
        self._where = describe(client)
        self._key = key or experience_key(run)
        self.gate = MessageGate(kinds, max_bytes, expect, check)
        self._backoff = backoff or Backoff()
        self._block_limit = blocking_limit(client)
        self.errors = 0
        self.last_outage = ""

    @property
    def rejected(self) -> int:
        return self.gate.rejected

    @property
    def received(self) -> int:
        return self.gate.received

    @property
    def bytes_received(self) -> int:
        return self.gate.bytes_received

    @property
    def last_error(self) -> str:
        """Why the last message was rejected, else what the last outage was."""
        return self.gate.last_error or self.last_outage

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
            self.last_outage = f"{type(exc).__name__}: {exc}"
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
        admitted = (self.gate.admit(raw) for raw in raws)
        return [message for message in admitted if message is not None]
