"""The launcher's hold on a Redis run's namespace: claim the name (with the run's own token, kept
across Redis restarts), clear stale keys, publish the config for hosts that join, keep the claim,
the config, the actor counter and the run's counters while the fleet runs, and at the end raise
the stop flag and delete the keys.

Redis is an optional extra: it is imported when a run asks for it.
"""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path
from typing import Any

from rlfleet.errors import ConfigError, TransportError


def check_run_name(run: str) -> str:
    """``run`` if it is a valid Redis run name; ConfigError naming the allowed form otherwise
    (host commands check it before they try to connect)."""
    from rlfleet.transport.redis.keys import check_name

    return check_name(run, "run name")


class RedisRun:
    """The launcher's side of a Redis run: claims the name, clears stale keys, keeps the claim
    (and what hosts need to join) while the fleet runs, and at the end raises the stop flag and
    deletes the keys.

    The claim carries a random token of this run (:class:`~rlfleet.transport.redis.claim.
    RunClaim`): a thread re-asserts it every quarter second, putting back the config, the actor
    counter and the heartbeat a restarted Redis lost, so a second learner under the same name is
    refused whatever the timing. If another host's token is found there (this one could not
    reach Redis for longer than the claim's TTL and the name was taken), :attr:`lost` says so:
    the launcher stops, and neither raises the stop flag nor deletes keys that are not its own.
    """

    #: Seconds between two writes of the run's counters into the status hash (one HSET each).
    COUNTERS_INTERVAL_S = 1.0

    def __init__(
        self,
        url: str,
        run: str,
        config_json: str,
        keep_keys: bool = False,
        probation_s: float | None = None,
    ) -> None:
        from rlfleet.transport.redis import RunStatus, connect, delete_run, prefix, redact_url
        from rlfleet.transport.redis.claim import PROBATION_S, RunClaim
        from rlfleet.transport.redis.connection import RETRYABLE

        self.prefix = prefix(run)  # validates the name (ConfigError names the allowed form)
        self.run, self.keep_keys = run, keep_keys
        self.where = redact_url(url)
        self.token = secrets.token_hex(8)
        self.client = connect(url, wait=10.0)
        self.claim = RunClaim(
            self.client,
            run,
            self.token,
            config_json,
            probation_s=PROBATION_S if probation_s is None else probation_s,
        )
        try:
            holder = self.claim.acquire()
        except RETRYABLE as exc:
            self.client.close()
            raise TransportError(f"Redis at {self.where} is unreachable: {exc}") from exc
        if holder is not None:
            self.client.close()
            who = "is starting under it now" if holder.startswith("pending:") else "holds it"
            raise ConfigError(
                f"run {run!r} is already running on Redis at {self.where} (another learner host "
                f"{who}); pick another name with --run NAME or stop that run"
            )
        delete_run(self.client, run)  # a reused name starts clean: no stale params or experience
        # the claim, the resolved config (for hosts that join; no secrets in it), the heartbeat
        self.claim.assert_claim()
        self.lost: str | None = None
        self.status = RunStatus(self.client, run)
        self._counters: dict[str, int] = {}
        self._counters_at = float("-inf")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep, name="rlfleet-claim", daemon=True)
        self._thread.start()

    def _keep(self) -> None:
        """Re-assert the claim every beat (a thread: an unreachable server must not stall the
        launcher's supervision loop); stop once another host holds the name."""
        from rlfleet.transport.redis.claim import BEAT_S

        while not self._stop.wait(BEAT_S):
            try:
                ours = self.claim.assert_claim()
            except TransportError as exc:  # wrong password after a restart: nothing to retry
                self.lost = f"the Redis server refused this host: {exc}"
                return
            if ours is False:
                self.lost = (
                    f"another learner host took run {self.run!r} on Redis at {self.where} while "
                    f"this one could not reach the server for over {self.claim.ttl_s:g} s"
                )
                return

    def beat(self) -> bool:
        """Whether the run is still ours (the claim is kept by a thread; this does no I/O)."""
        return self.lost is None

    def publish_counters(self, **counters: int) -> bool:
        """Write the run's counters (``env_steps``, ``updates``, ``learner_version``) into the
        status hash for roles on other hosts -- ``rlfleet evaluator`` labels its rows with them.
        Written at most every ``COUNTERS_INTERVAL_S`` (the launcher calls this on every beat);
        True when written. Best effort: an outage is counted by ``status.errors``."""
        self._counters = dict(counters)
        now = time.monotonic()
        if self.lost or now - self._counters_at < self.COUNTERS_INTERVAL_S:
            return False
        self._counters_at = now
        return self.status.update(**self._counters, counters_at=round(time.time(), 3))

    def request_stop(self, reason: str) -> None:
        """Tell actors on other hosts to finish (they poll the flag); best effort. Not once the
        run was lost: the flag would stop the other host's run."""
        if self.lost is None:
            self.status.request_stop(reason)

    def events(self) -> list[bytes]:
        """Status messages from remote roles since the last call."""
        from rlfleet.transport.redis.roles import run_events

        return [] if self.lost else run_events(self.client, self.run)

    def finish(self, reason: str, wait_for_actors_s: float = 0.0) -> str:
        """Raise the stop flag, leave, delete the keys unless kept; '' or what went wrong.

        Actors on other hosts end on the flag, but one blocked on a full queue notices only
        after its ``block_timeout``, and would then flush into a deleted namespace (leaving
        stray keys): so wait up to ``wait_for_actors_s`` for their heartbeats to leave first.
        A lost run touches nothing of the host that holds the name now.
        """
        from rlfleet.transport.redis import alive_actors, alive_members, delete_run

        self._stop.set()
        self._thread.join(timeout=10.0)
        try:
            if self.lost is not None:
                return f"Redis keys left to the host that holds run {self.run!r} now"
            if self._counters:  # the final counts, which the rate limit may have held back
                self.status.update(**self._counters, counters_at=round(time.time(), 3))
            self.status.request_stop(reason)
            deadline = time.monotonic() + wait_for_actors_s
            while time.monotonic() < deadline and (
                alive_actors(self.client, self.run)
                or alive_members(self.client, self.run, "replay")
            ):
                time.sleep(0.2)  # remote processes: nothing local to wait on
            if self.keep_keys:
                self.claim.release()
            else:
                delete_run(self.client, self.run)
        except TransportError as exc:  # Redis away at the very end: the run itself is done
            return f"could not clean up the run's Redis keys: {exc}"
        finally:
            self.client.close()
        return ""


def open_redis_run(
    config: Any, url: str | None, run_dir: str, config_json: str, private: bool = False
) -> RedisRun | None:
    """A :class:`RedisRun` when the config asks for the Redis transport, else None.

    ``private``: the server was started for this run alone (``--ray`` without ``--redis``), so
    no other learner host can hold the name: the claim skips its probation wait."""
    if config.transport.kind != "redis":
        return None
    if not url:
        raise ConfigError(
            "transport.kind is 'redis' but no Redis URL was given; pass --redis "
            "redis://[:PASSWORD@]HOST:6379/0 (or set RLFLEET_REDIS_URL)"
        )
    run = config.transport.run or Path(run_dir).resolve().name
    return RedisRun(
        url,
        run,
        config_json,
        keep_keys=config.transport.keep_keys,
        probation_s=0.0 if private else None,
    )
