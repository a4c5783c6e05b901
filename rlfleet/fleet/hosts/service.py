"""``rlfleet replay`` on a host of its own: the run's service at the memory node (the agent's
``spec.service``; Ape-X's replay service), in this process.

It waits for the run's config in Redis (as ``rlfleet actor`` does), refuses a run whose config
has ``transport.replay_service = false`` (its learner samples locally and reads the experience
list itself), and serves until the run's stop flag, until no learner has been alive for
``learner_grace_s``, or Ctrl-C. A second instance for the same run waits as a standby.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rlfleet.agents import registry
from rlfleet.errors import ConfigError
from rlfleet.fleet.liveness import LearnerWatch, wait_for_config
from rlfleet.fleet.prepare import check_service
from rlfleet.fleet.services import serve_service


@dataclass
class RemoteServiceResult:
    """What ``rlfleet replay`` reports when it ends."""

    run: str
    stop_reason: str = ""
    stats: dict[str, Any] = field(default_factory=dict)


class RemoteService:
    """``rlfleet replay``: one service instance for a run, on this host."""

    def __init__(self, redis_url: str, run: str, *, learner_grace_s: float = 30.0) -> None:
        from rlfleet.transport.redis import connect

        self.run_name = run
        self.client = connect(redis_url, wait=30.0)
        self.watch = LearnerWatch.over_redis(self.client, run, learner_grace_s)
        self._interrupted = threading.Event()
        self.spec: Any = None

    def stop_check(self, wait_s: float) -> str | None:
        """The run's stop flag, or no learner for the grace period; sleeps ``wait_s``."""
        if self._interrupted.wait(wait_s):
            return "interrupted"
        return self.watch.end_reason()

    def describe(self, stats: dict[str, Any]) -> str:
        """One status line of the running service."""
        return self.spec.service.describe(stats) if self.spec is not None else str(stats)

    def run(
        self,
        wait_s: float = 120.0,
        report: Callable[[dict[str, Any]], None] | None = None,
        on_standby: Callable[[str], None] | None = None,
    ) -> RemoteServiceResult:
        """Wait for the run's config, then serve it until the run ends."""
        result = RemoteServiceResult(run=self.run_name)
        try:
            config = wait_for_config(self.client, self.run_name, wait_s)
            self.spec = registry.spec_of(config)
            if not config.transport.replay_service:
                raise ConfigError(
                    f"run {self.run_name!r} does not use a replay service: its learner samples "
                    "its own replay (start the run with --set transport.replay_service=true)"
                )
            check_service(config, self.spec)
            self.watch.restart_grace()
            stats = serve_service(
                config,
                self.spec,
                self.client,
                self.run_name,
                config.run.seed + 313,
                self.stop_check,
                report=report,
                on_standby=on_standby,
            )
            result.stats = stats
            result.stop_reason = str(stats["stop_reason"])
        except KeyboardInterrupt:
            result.stop_reason = "interrupted"
        finally:
            self.client.close()
        return result
