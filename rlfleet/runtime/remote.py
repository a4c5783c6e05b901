"""``rlfleet actor`` on a host of its own: K actor processes that join a running Redis run.

The run's learner host (``rlfleet learner`` or ``rlfleet train --transport redis``) stores the
resolved config under ``rlfleet:{run}:config``; this supervisor waits for it, starts K actors
from the same forkserver as the local fleet, restarts the ones that die, and ends when the run's
stop flag is set -- or when no learner has been alive for ``learner_grace_s`` (a learner host
that crashed never sets the flag; the grace outlasts a Redis restart, which briefly loses every
key).

Each actor takes a run-wide id ``r{seq}`` from a counter in Redis (ids stay unique across
hosts) and slot ``seq mod N`` of the N-explorer epsilon ladder, N = ``actor.num_actors`` of the
run's config (8 when that is 0), so a fleet assembled from many hosts still spreads exploration.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from rlfleet.errors import TransportError
from rlfleet.runtime.configs import AnyConfig, config_from_dict

#: Epsilon-ladder size for remote actors when the run's config leaves actor.num_actors at 0.
DEFAULT_LADDER = 8


@dataclass
class RemoteResult:
    """What ``rlfleet actor`` reports when it ends."""

    run: str
    started: int = 0
    restarts: int = 0
    stop_reason: str = ""


def wait_for_config(client: Any, run: str, wait_s: float) -> AnyConfig:
    """The run's config as its learner host stored it; waits up to ``wait_s`` for it."""
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
            return config_from_dict(json.loads(raw))
        if time.monotonic() >= deadline:
            raise TransportError(
                f"run {run!r} has no config in Redis after {wait_s:g} s: start its learner "
                "first (rlfleet learner --redis URL --run NAME PRESET), or check --run"
            )
        time.sleep(0.5)  # waiting for another host to start: nothing to block on


class RemoteActors:
    """Starts and watches K actor processes of one run."""

    def __init__(self, redis_url: str, run: str, num: int, *, learner_grace_s: float = 30.0):
        from rlfleet.transport.redis import RunStatus, connect

        self.redis_url, self.run_name, self.num = redis_url, run, num
        self.learner_grace_s = learner_grace_s
        self.client = connect(redis_url, wait=30.0)
        self.status = RunStatus(self.client, run)
        self.result = RemoteResult(run=run)
        self._procs: list[Any] = []

    def _start(self, config: AnyConfig, config_json: str) -> Any:
        from rlfleet.runtime import roles
        from rlfleet.runtime.launcher import fleet_context
        from rlfleet.transport.redis.keys import key

        seq = int(self.client.incr(key(self.run_name, "actor_seq")))
        ladder = config.actor.num_actors or DEFAULT_LADDER
        seed = config.run.seed * 100_003 + 7919 * seq + 1
        args = (
            config_json,
            self.redis_url,
            self.run_name,
            f"r{seq}",
            (seq - 1) % ladder,
            ladder,
            seed,
        )
        proc = fleet_context().Process(
            target=roles.remote_actor_main, args=args, name=f"rlfleet-actor-r{seq}", daemon=True
        )
        proc.start()
        self.result.started += 1
        return proc

    def _learner_alive(self) -> bool | None:
        from rlfleet.transport.redis import alive_members

        try:
            return bool(alive_members(self.client, self.run_name, "learners"))
        except TransportError:
            return None  # Redis unreachable: unknown, not dead

    def run(self, wait_s: float = 120.0) -> RemoteResult:
        from rlfleet.config import to_dict

        config = wait_for_config(self.client, self.run_name, wait_s)
        config_json = json.dumps(to_dict(config))
        self._procs = [self._start(config, config_json) for _ in range(self.num)]
        last_learner = time.monotonic()
        try:
            while True:
                if self.status.stop_requested():
                    self.result.stop_reason = "run stopped"
                    break
                alive = self._learner_alive()
                if alive or alive is None:
                    last_learner = time.monotonic()
                elif time.monotonic() - last_learner > self.learner_grace_s:
                    self.result.stop_reason = "no learner"
                    break
                for i, proc in enumerate(self._procs):
                    if not proc.is_alive():
                        self.result.restarts += 1
                        self._procs[i] = self._start(config, config_json)
                time.sleep(0.5)  # supervision tick; the actors do the work
        except KeyboardInterrupt:
            self.result.stop_reason = "interrupted"
        finally:
            self._stop(graceful=self.result.stop_reason == "run stopped")
        return self.result

    def _stop(self, graceful: bool) -> None:
        """After a stop flag the actors end by themselves (flushing what they hold): give them
        time. Otherwise (no learner, Ctrl-C) nobody tells them, so end them now."""
        deadline = time.monotonic() + (10.0 if graceful else 0.0)
        for proc in self._procs:
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
        for proc in self._procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5.0)
        self.client.close()
