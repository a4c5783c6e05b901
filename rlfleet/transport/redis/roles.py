"""Redis ends of a role that runs away from the launcher: an actor's outbox + parameter source
(with its heartbeat), a status link through the run's event list and stop flag, and the
launcher's reading of those events.

These implement the ports of :mod:`rlfleet.transport.ports`; the fleet picks them for roles on
the Redis data plane.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from rlfleet.transport.codec import encode
from rlfleet.transport.ports import CMD_STOP
from rlfleet.transport.redis.connection import RETRYABLE, describe, raise_if_fatal
from rlfleet.transport.redis.fleet import Heartbeat, RunStatus
from rlfleet.transport.redis.keys import key
from rlfleet.transport.redis.outbox import RedisOutbox
from rlfleet.transport.redis.params import RedisParams
from rlfleet.transport.retry import Backoff

#: Status messages from remote roles the server holds at most (older ones are trimmed).
MAX_EVENTS = 1000
#: Longest pause between reconnect attempts: short, so a restarted server is found quickly.
BACKOFF_CAP_S = 2.0
#: Seconds a role waits for Redis at start (a restarted actor may land in an outage).
CONNECT_WAIT_S = 30.0


def default_backoff() -> Backoff:
    """The reconnect schedule every role's Redis ends use."""
    return Backoff(cap=BACKOFF_CAP_S)


class ActorEnd:
    """An actor's outbox and parameter source over Redis, refreshing its heartbeat on both
    paths (the beat itself is rate-limited, so calling it per push costs nothing)."""

    def __init__(
        self,
        client: Any,
        run: str,
        member: str | int,
        *,
        max_queue: int,
        max_backlog: int,
        block_timeout: float,
    ) -> None:
        self._outbox = RedisOutbox(
            client,
            run,
            actor_id=member,
            max_queue=max_queue,
            max_backlog=max_backlog,
            block_timeout=block_timeout,
            backoff=default_backoff(),
        )
        self._params = RedisParams(client, run, backoff=default_backoff())
        self.heartbeat = Heartbeat(client, run, member, group="actors")

    @property
    def dropped(self) -> int:
        return self._outbox.dropped

    @property
    def dropped_steps(self) -> int:
        return self._outbox.dropped_steps

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
    """A remote role's status link: reports go up a bounded Redis list that the learner host's
    launcher drains; the only command is "stop", read from the run's stop flag.

    Neither direction raises on an outage: a report that cannot be sent is dropped (the next one
    carries the cumulative counters), and an unreadable flag means "keep going".
    """

    def __init__(
        self, client: Any, run: str, member: str, role: str = "actor", check_interval: float = 0.5
    ) -> None:
        self._client, self.member, self.role = client, member, role
        self._events = key(run, "events")
        self._status = RunStatus(client, run)
        self._check_interval = check_interval
        self._last_check = float("-inf")
        self.errors = 0

    def send(self, kind: str, **meta: Any) -> None:
        payload = encode(kind, None, {"role": self.role, "member": self.member, **meta})
        pipe = self._client.pipeline(transaction=True)
        pipe.rpush(self._events, payload)
        pipe.ltrim(self._events, -MAX_EVENTS, -1)  # bounded even with nobody reading
        try:
            pipe.execute()
        except RETRYABLE as exc:
            raise_if_fatal(exc, self.member)
            self.errors += 1

    def poll_command(self, timeout: float = 0.0) -> str | None:
        if timeout > 0:
            time.sleep(timeout)  # the flag is a key, there is nothing to block on
        now = time.monotonic()
        if now - self._last_check < self._check_interval:
            return None
        self._last_check = now
        return CMD_STOP if self._status.stop_requested() else None


def run_events(client: Any, run: str, max_messages: int = 256) -> list[bytes]:
    """Drain up to ``max_messages`` status messages of remote roles ([] if unreachable)."""
    try:
        return list(client.lpop(key(run, "events"), max_messages) or [])
    except RETRYABLE as exc:
        raise_if_fatal(exc, describe(client))
        return []
