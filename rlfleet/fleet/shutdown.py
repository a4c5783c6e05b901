"""A local fleet's ordered shutdown, and the commands to running roles it is made of.

Order: actors (and, over Redis, the run's stop flag for actors on other hosts), then the learner
(final parameters and checkpoint), then the agent's service, then the final evaluation and the
evaluator. Ctrl-C meanwhile does not kill the roles: the learner always saves its checkpoint; a
press after that skips only the final evaluation. The :class:`Supervisor` itself never touches
sockets; this is the part that does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from rlfleet.fleet.interrupts import InterruptHold, shutdown_notice
from rlfleet.fleet.progress import Progress
from rlfleet.fleet.redis_run import RedisRun
from rlfleet.fleet.report import RunReport
from rlfleet.fleet.status_intake import StatusLinks
from rlfleet.fleet.supervisor import Supervisor
from rlfleet.transport.local import send_command
from rlfleet.transport.ports import CMD_FINAL_EVAL, CMD_STOP

__all__ = ["OrderedShutdown", "command", "stop_role", "wait_until"]


def command(supervisor: Supervisor, kind: str, name: str) -> None:
    """Send the command ``name`` to every role of ``kind`` that said hello on its link."""
    for role in supervisor.of_kind(kind):
        if role.link is not None:
            send_command(role.link, name)


def wait_until(predicate: Callable[[], bool], timeout: float, pump: Callable[[], None]) -> bool:
    """Call ``pump`` until ``predicate()`` holds or ``timeout`` seconds passed; the predicate's
    last value. ``pump`` makes the progress (reads status links) and does the waiting."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        pump()
    return predicate()


def stop_role(
    supervisor: Supervisor,
    kind: str,
    done: Callable[[], bool],
    timeout: float,
    pump: Callable[[], None],
) -> None:
    """Ask the (single) role ``kind`` to stop; wait until ``done()`` or it exits, at most
    ``timeout`` seconds, then join it."""
    role = supervisor.get(kind)
    if role is not None and role.handle.is_alive():
        command(supervisor, kind, CMD_STOP)
        wait_until(lambda: done() or not role.handle.is_alive(), timeout, pump)
        role.handle.join(timeout=10.0)


@dataclass
class OrderedShutdown:
    """Stop one host's roles in order (see the module's docstring).

    Attributes:
        supervisor: the host's roles.
        report: what the roles reported (the learner's final ``stopped``, the final evaluation).
        links: the roles' status links.
        pump: reads what the roles report while waiting (status links, remote events).
        write_learner_row: writes the learner's last report as a metrics row.
        redis: the run's Redis claim, or None on the local transport.
    """

    supervisor: Supervisor
    report: RunReport
    links: StatusLinks
    pump: Callable[[], None]
    write_learner_row: Callable[[], None]
    redis: RedisRun | None

    def __call__(self, reason: str, progress: Progress) -> None:
        """Stop every role; ``reason`` is the run's stop reason."""
        saved = threading.Event()
        with InterruptHold(shutdown_notice(saved)) as hold:
            self._stop_roles(reason, progress, hold, saved)

    def _stop_roles(
        self, reason: str, progress: Progress, hold: InterruptHold, saved: threading.Event
    ) -> None:
        supervisor, report = self.supervisor, self.report
        progress.message(f"stopping ({reason}) ...")
        command(supervisor, "actor", CMD_STOP)
        if self.redis is not None:  # actors on other hosts: the run's stop flag
            self.redis.request_stop(reason)
        supervisor.join("actor", timeout=5.0)
        stop_role(supervisor, "learner", lambda: report.stopped is not None, 120.0, self.pump)
        saved.set()
        if report.learner_fresh:  # the learner's final report: a short run's only one
            self.write_learner_row()
        presses = hold.presses
        stop_role(supervisor, "service", lambda: False, 10.0, self.pump)  # needed until now
        evaluator = supervisor.get("evaluator")
        alive = evaluator is not None and evaluator.handle.is_alive()
        if alive and report.learner_error is None:
            progress.message("final evaluation ...")
            command(supervisor, "evaluator", CMD_FINAL_EVAL)
            wait_until(
                lambda: (
                    report.final_eval is not None
                    or not evaluator.handle.is_alive()
                    or hold.presses > presses
                ),
                600.0,
                self.pump,
            )
        command(supervisor, "evaluator", CMD_STOP)
        self.links.read(timeout=0.05)
        supervisor.join("evaluator", timeout=5.0)
