"""``rlfleet actor`` on a host of its own: K actor processes that join a running Redis run.

The run's learner host (``rlfleet learner`` or ``rlfleet train --transport redis``) stores the
resolved config under ``rlfleet:{run}:config``; this host waits for it, starts K actors from the
same forkserver as the local fleet, restarts the ones that die, and ends when the run's stop flag
is set -- or when no learner has been alive for ``learner_grace_s``
(:class:`~rlfleet.fleet.liveness.LearnerWatch`).

Each actor takes a run-wide id ``r{seq}`` from a counter in Redis (ids stay unique across
hosts) and slot ``seq mod N`` of the N explorers, N = ``actor.num_actors`` of the run's config
(8 when that is 0), so a fleet assembled from many hosts still spreads exploration.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from rlfleet.config import to_dict
from rlfleet.fleet import bootstrap
from rlfleet.fleet.addresses import FleetAddresses
from rlfleet.fleet.liveness import LearnerWatch, wait_for_config
from rlfleet.fleet.supervisor import Placement, ProcessPlacement, Supervisor

#: Explorer-ladder size for remote actors when the run's config leaves actor.num_actors at 0.
DEFAULT_LADDER = 8


class RunEnded(Exception):
    """The run ended while this host waited for Redis to number a new actor."""


@dataclass
class RemoteResult:
    """What ``rlfleet actor`` reports when it ends."""

    run: str
    started: int = 0
    restarts: int = 0
    stop_reason: str = ""


class RemoteActors:
    """Starts and watches K actor processes of one run."""

    def __init__(
        self,
        redis_url: str,
        run: str,
        num: int,
        *,
        learner_grace_s: float = 30.0,
        placement: Placement | None = None,
    ) -> None:
        from rlfleet.transport.redis import connect

        self.redis_url, self.run_name, self.num = redis_url, run, num
        self.client = connect(redis_url, wait=30.0)
        self.watch = LearnerWatch.over_redis(self.client, run, learner_grace_s)
        self.placement = placement
        self.result = RemoteResult(run=run)

    def _next_seq(self) -> int:
        """The next run-wide actor number. After a Redis restart the counter is back only
        once the learner host has re-published the run (with the config, in one script), so a
        number is never handed out twice; meanwhile this waits (raising :class:`RunEnded` if
        the run ends first)."""
        from rlfleet.transport.redis.claim import next_actor_seq

        while True:
            seq = next_actor_seq(self.client, self.run_name)
            if seq is not None:
                return seq
            reason = self.watch.end_reason()
            if reason:
                raise RunEnded(reason)
            time.sleep(0.25)  # the learner host re-publishes within a fraction of a second

    def _launch(self, config: Any, config_json: str) -> Any:
        def launch(kind: str, index: int, incarnation: int) -> tuple[Any, tuple]:
            seq = self._next_seq()
            ladder = config.actor.num_actors or DEFAULT_LADDER
            seed = config.run.seed * 100_003 + 7919 * seq + 1
            addresses = FleetAddresses.remote(self.redis_url, self.run_name)
            args = (config_json, addresses, (seq - 1) % ladder, ladder, seed, f"r{seq}")
            self.result.started += 1
            return bootstrap.actor_main, args

        return launch

    def run(self, wait_s: float = 120.0) -> RemoteResult:
        config = wait_for_config(self.client, self.run_name, wait_s)
        self.watch.restart_grace()
        placement = self.placement or ProcessPlacement()
        supervisor = Supervisor(
            placement, self._launch(config, json.dumps(to_dict(config))), essential=()
        )
        try:
            for i in range(self.num):
                supervisor.start("actor", i)
            while True:
                reason = self.watch.end_reason()
                if reason:
                    self.result.stop_reason = reason
                    break
                supervisor.check()  # may wait to number a restarted actor (RunEnded)
                self.result.restarts = supervisor.restarts.get("actor", 0)
                time.sleep(0.5)  # supervision tick; the actors do the work
        except RunEnded as ended:  # while waiting for Redis to number an actor
            self.result.stop_reason = str(ended)
        except KeyboardInterrupt:
            self.result.stop_reason = "interrupted"
        finally:
            self._stop(supervisor, graceful=self.result.stop_reason == "run stopped")
        return self.result

    def _stop(self, supervisor: Supervisor, graceful: bool) -> None:
        """After a stop flag the actors end by themselves (flushing what they hold): give them
        time. Otherwise (no learner, Ctrl-C) nobody tells them, so end them now."""
        supervisor.join("actor", timeout=10.0 if graceful else 0.0)
        supervisor.terminate_all()
        supervisor.join("actor", timeout=5.0)
        self.client.close()
