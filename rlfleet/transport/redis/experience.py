"""Experience over Redis: actors push codec messages onto one bounded list per run; the learner
pops them with a blocking wait.

* :class:`~rlfleet.transport.redis.outbox.RedisOutbox` (:mod:`.outbox`): an actor's end, a
  sender thread with a bounded local backlog, backpressure or ``drop_oldest`` when the list is
  full, and reconnects after an outage (the module docstring there has the details);
* :class:`~rlfleet.transport.redis.inbox.RedisInbox` (:mod:`.inbox`): the learner's end,
  ``BLPOP`` with a deadline, rejecting what does not decode or match the schema;
* :func:`pushed_per_actor`: the per-actor push counters the outboxes keep.

The names stay importable from here (and from :mod:`rlfleet.transport.redis`).
"""

from __future__ import annotations

import redis

from rlfleet.errors import TransportError
from rlfleet.transport.redis.connection import RETRYABLE, describe, raise_if_fatal
from rlfleet.transport.redis.inbox import RedisInbox
from rlfleet.transport.redis.keys import experience_key, pushed_key
from rlfleet.transport.redis.outbox import (
    CHUNK_BYTES,
    FLUSH_BATCH,
    FULL_PAUSE_CAP_S,
    IDLE_EXIT_S,
    WHEN_FULL,
    RedisOutbox,
)
from rlfleet.transport.schema import check_schema

__all__ = [
    "CHUNK_BYTES",
    "FLUSH_BATCH",
    "FULL_PAUSE_CAP_S",
    "IDLE_EXIT_S",
    "WHEN_FULL",
    "RedisInbox",
    "RedisOutbox",
    "check_schema",
    "experience_key",
    "pushed_key",
    "pushed_per_actor",
]


def pushed_per_actor(client: redis.Redis, run: str) -> dict[str, int]:
    """Messages each actor id has pushed in this run (raises TransportError if unreachable)."""
    try:
        raw = client.hgetall(pushed_key(run))
    except RETRYABLE as exc:
        raise_if_fatal(exc, describe(client))
        raise TransportError(f"Redis at {describe(client)} is unreachable: {exc}") from exc
    return {k.decode(): int(v) for k, v in raw.items()}
