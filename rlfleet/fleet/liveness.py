"""How a host that joined a Redis run knows the run is still on: the run's stop flag, and the
learner's claim watched with a grace period (a learner host that crashed never sets the flag; the
grace outlasts a Redis restart, which briefly loses every key). One watch for every host role:
``rlfleet actor``, ``rlfleet replay``, ``rlfleet evaluator`` -- and each actor process those
hosts start (:class:`WatchedLink`), so an actor whose host supervisor was killed still ends
with the run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from rlfleet.errors import TransportError
from rlfleet.transport.ports import CMD_STOP, StatusLink


class LearnerWatch:
    """``end_reason()``: "run stopped" once the stop flag is set, "no learner" once no learner
    has been alive for ``grace_s`` seconds, else None. A learner whose liveness is unknown
    (``learner_alive()`` is None: the server is unreachable) counts as alive: unknown is not
    dead. :meth:`over_redis` watches a Redis run."""

    def __init__(
        self,
        stop_requested: Callable[[], bool],
        learner_alive: Callable[[], bool | None],
        grace_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stop_requested, self.learner_alive = stop_requested, learner_alive
        self.grace_s = grace_s
        self._clock = clock
        self._last_alive = clock()

    @classmethod
    def over_redis(
        cls, client: Any, run: str, grace_s: float, stop_flag: bool = True
    ) -> LearnerWatch:
        """The run's stop flag (unless ``stop_flag`` is False: the caller reads it already) and
        its ``learners`` heartbeat group."""
        from rlfleet.transport.redis import RunStatus, alive_members

        status = RunStatus(client, run)

        def learner_alive() -> bool | None:
            try:
                return bool(alive_members(client, run, "learners"))
            except TransportError:
                return None

        return cls(status.stop_requested if stop_flag else lambda: False, learner_alive, grace_s)

    def end_reason(self) -> str | None:
        if self.stop_requested():
            return "run stopped"
        alive = self.learner_alive()
        now = self._clock()
        if alive or alive is None:
            self._last_alive = now
        elif now - self._last_alive > self.grace_s:
            return "no learner"
        return None

    def restart_grace(self) -> None:
        """Count the grace period from now (after a long wait that was not the learner's)."""
        self._last_alive = self._clock()


class WatchedLink:
    """A status link that also says "stop" once ``watch`` names a reason (no learner for the
    grace period). An actor process on another host polls its link for commands; with this,
    it ends when the learner host dies even if its own host's supervisor was killed first.
    The watch (two small Redis reads) runs at most every ``check_interval_s`` seconds."""

    def __init__(
        self,
        link: StatusLink,
        watch: LearnerWatch,
        check_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.link, self.watch = link, watch
        self.check_interval_s = check_interval_s
        self._clock = clock
        self._checked = float("-inf")
        self.end_reason: str | None = None

    def send(self, kind: str, **meta: Any) -> None:
        self.link.send(kind, **meta)

    def poll_command(self, timeout: float = 0.0) -> str | None:
        command = self.link.poll_command(timeout)
        if command is not None or self.end_reason is not None:
            return command or CMD_STOP
        now = self._clock()
        if now - self._checked < self.check_interval_s:
            return None
        self._checked = now
        self.end_reason = self.watch.end_reason()
        return CMD_STOP if self.end_reason else None


def wait_for_config(client: Any, run: str, wait_s: float) -> Any:
    """The run's config as its learner host stored it; waits up to ``wait_s`` for it."""
    from rlfleet.agents import registry
    from rlfleet.transport.redis.connection import RETRYABLE
    from rlfleet.transport.redis.keys import key

    deadline = time.monotonic() + wait_s
    while True:
        try:
            raw = client.get(key(run, "config"))
        except RETRYABLE:
            raw = None
        if raw is not None:
            # strict parsing: unknown or ill-typed keys are an error that names them
            return registry.config_from_dict(json.loads(raw))
        if time.monotonic() >= deadline:
            raise TransportError(
                f"run {run!r} has no config in Redis after {wait_s:g} s: start its learner "
                "first (rlfleet learner --redis URL --run NAME PRESET), or check --run"
            )
        time.sleep(0.5)  # waiting for another host to start: nothing to block on


def wait_for_learner(client: Any, run: str, wait_s: float) -> None:
    """Return once the run has a live learner claim; raise after ``wait_s`` seconds without.

    A config left in Redis by a run that has ended (``--keep-keys``) is not a live run: the
    learner's claim is what says the config is current.
    """
    from rlfleet.transport.redis import alive_members

    deadline = time.monotonic() + wait_s
    while True:
        try:
            if alive_members(client, run, "learners"):
                return
        except TransportError:
            pass  # unreachable for now: keep waiting until the deadline
        if time.monotonic() >= deadline:
            raise TransportError(
                f"run {run!r} has had no live learner for {wait_s:g} s: start it first "
                "(rlfleet learner --redis URL --run NAME PRESET), or check --run and the URL"
            )
        time.sleep(0.5)  # waiting for another host to start: nothing to block on
