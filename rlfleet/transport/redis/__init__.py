"""Redis transport: the many-machines twin of :mod:`rlfleet.transport.local`.

Same duck-typed interfaces, same codec (``rlfleet.transport.codec``), every key under
``rlfleet:{run}:``. Needs the ``redis`` extra (``pip install rlfleet[redis]``).

* :func:`connect` -- a pooled client from a ``redis://`` / ``rediss://`` URL;
* :class:`RedisOutbox` / :class:`RedisInbox` -- bounded experience list (actors -> learner);
* :class:`RedisParams` -- versioned parameters (learner -> actors, download only on change);
* :class:`Heartbeat`, :func:`alive_actors`, :class:`RunStatus` -- membership and stop flag.
"""

from __future__ import annotations

from rlfleet.transport.redis.connection import connect, redact_url
from rlfleet.transport.redis.experience import pushed_per_actor
from rlfleet.transport.redis.fleet import (
    Heartbeat,
    RunStatus,
    alive_actors,
    alive_members,
    delete_run,
)
from rlfleet.transport.redis.inbox import RedisInbox
from rlfleet.transport.redis.keys import experience_key, prefix
from rlfleet.transport.redis.outbox import RedisOutbox
from rlfleet.transport.redis.params import RedisParams
from rlfleet.transport.schema import check_schema

__all__ = [
    "Heartbeat",
    "RedisInbox",
    "RedisOutbox",
    "RedisParams",
    "RunStatus",
    "alive_actors",
    "alive_members",
    "check_schema",
    "connect",
    "delete_run",
    "experience_key",
    "prefix",
    "pushed_per_actor",
    "redact_url",
]
