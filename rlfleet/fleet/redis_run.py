"""The launcher's hold on a Redis run's namespace: claim the name, clear stale keys, publish the
config for hosts that join, keep a heartbeat and the run's counters while the fleet runs, and at
the end raise the stop flag and delete the keys.

Redis is an optional extra: it is imported when a run asks for it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rlfleet.errors import ConfigError, TransportError


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
        """Status messages from remote roles since the last call."""
        from rlfleet.transport.redis.roles import run_events

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


def open_redis_run(config: Any, url: str | None, run_dir: str, config_json: str) -> RedisRun | None:
    """A :class:`RedisRun` when the config asks for the Redis transport, else None."""
    if config.transport.kind != "redis":
        return None
    if not url:
        raise ConfigError(
            "transport.kind is 'redis' but no Redis URL was given; pass --redis "
            "redis://[:PASSWORD@]HOST:6379/0 (or set RLFLEET_REDIS_URL)"
        )
    run = config.transport.run or Path(run_dir).resolve().name
    return RedisRun(url, run, config_json, keep_keys=config.transport.keep_keys)
