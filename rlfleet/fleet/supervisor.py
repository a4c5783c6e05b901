"""Roles as processes or threads, started and kept alive.

* :class:`ProcessPlacement` starts each role in its own process from the fleet's forkserver (the
  default: real parallelism, a crash stays in its process).
* :class:`ThreadPlacement` starts each role as a thread of the launcher's process: the same role
  mains and transports, so a breakpoint in a learner step works, tests run without process
  start-up, and a one-core machine is not oversubscribed.

:class:`Supervisor` owns the roles of one host: it starts them through a placement, restarts
actors and other restartable roles that die (at most ``max_restarts_per_minute`` per restartable
role), and says when the run cannot go on (the learner died, or roles keep dying). It never
names an algorithm and never touches sockets, so it is tested with fake placements.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from rlfleet.fleet.forkserver import forkserver_context

#: Restarts allowed per restartable role per minute before the run is given up.
MAX_RESTARTS_PER_MINUTE = 5


class RoleHandle(Protocol):
    """A started role: a process, or a thread behaving like one."""

    def is_alive(self) -> bool: ...

    @property
    def exitcode(self) -> int | None: ...

    def join(self, timeout: float | None = None) -> None: ...

    def terminate(self) -> None: ...


class Placement(Protocol):
    """Where roles run: ``start(name, target, args)`` returns a started :class:`RoleHandle`."""

    name: str

    def start(self, name: str, target: Callable[..., None], args: tuple) -> RoleHandle: ...


class ThreadRole:
    """A role running as a daemon thread, with a process's interface: ``exitcode`` is None while
    it runs, 0 after a normal return and 1 after an exception. Threads cannot be killed:
    :meth:`terminate` does nothing, roles end on the supervisor's stop command."""

    def __init__(self, name: str, target: Callable[..., None], args: tuple) -> None:
        self._code: int | None = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                target(*args)
                self._code = 0
            except BaseException as exc:  # the role reported it on its link already
                self.error = exc
                self._code = 1

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def exitcode(self) -> int | None:
        return None if self._thread.is_alive() else self._code

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def terminate(self) -> None:
        return None


class ThreadPlacement:
    """Every role a thread of this process (``rlfleet train --in-process``)."""

    name = "threads"

    def start(self, name: str, target: Callable[..., None], args: tuple) -> RoleHandle:
        return ThreadRole(name, target, args)


class ProcessPlacement:
    """Every role a process forked from the fleet's forkserver
    (:mod:`rlfleet.fleet.forkserver`: it preloads torch and the roles' modules once)."""

    name = "processes"

    def __init__(self) -> None:
        self.ctx = forkserver_context()

    def start(self, name: str, target: Callable[..., None], args: tuple) -> RoleHandle:
        process = self.ctx.Process(target=target, args=args, name=name, daemon=True)
        process.start()
        return process


@dataclass
class Role:
    """One role of this host and its current incarnation."""

    kind: str
    index: int
    handle: RoleHandle
    incarnation: int = 0
    link: Any = None  # the role's status connection, once it said hello
    started_at: float = 0.0


class Supervisor:
    """Starts the roles of one host and keeps them running.

    ``launch(kind, index, incarnation)`` returns ``(target, args)`` for a role; ``essential``
    kinds (the learner) end the run when they die, every other kind is restarted.
    """

    def __init__(
        self,
        placement: Placement,
        launch: Callable[[str, int, int], tuple[Callable[..., None], tuple]],
        *,
        essential: Iterable[str] = ("learner",),
        max_restarts_per_minute: int = MAX_RESTARTS_PER_MINUTE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.placement = placement
        self.launch = launch
        self.essential = frozenset(essential)
        self.max_restarts_per_minute = max_restarts_per_minute
        self.clock = clock
        self.roles: dict[tuple[str, int], Role] = {}
        self.restarts: dict[str, int] = {}
        self._restart_times: list[float] = []

    def start(self, kind: str, index: int = 0, incarnation: int = 0) -> Role:
        target, args = self.launch(kind, index, incarnation)
        handle = self.placement.start(f"rlfleet-{kind}-{index}", target, args)
        role = Role(kind, index, handle, incarnation, started_at=self.clock())
        self.roles[(kind, index)] = role
        return role

    def get(self, kind: str, index: int = 0) -> Role | None:
        return self.roles.get((kind, index))

    def of_kind(self, kind: str) -> list[Role]:
        return [role for (k, _), role in self.roles.items() if k == kind]

    def check(self) -> tuple[str, str] | None:
        """Restart dead roles; ``(reason, detail)`` when the run cannot go on: an essential role
        died (``"<kind> failed"``), or restartable roles died more than the budget allows
        (``"roles keep failing"``)."""
        restartable = max(1, sum(1 for k, _ in self.roles if k not in self.essential))
        for role in list(self.roles.values()):
            if role.handle.is_alive():
                continue
            if role.kind in self.essential:
                return f"{role.kind} failed", f"exited with code {role.handle.exitcode}"
            now = self.clock()
            self._restart_times = [t for t in self._restart_times if now - t < 60.0] + [now]
            if len(self._restart_times) > self.max_restarts_per_minute * restartable:
                return "roles keep failing", f"{role.kind} processes keep dying"
            self.restarts[role.kind] = self.restarts.get(role.kind, 0) + 1
            self.start(role.kind, role.index, role.incarnation + 1)
        return None

    def join(self, kind: str, timeout: float) -> None:
        deadline = self.clock() + timeout
        for role in self.of_kind(kind):
            role.handle.join(timeout=max(0.0, deadline - self.clock()))

    def terminate_all(self) -> None:
        for role in self.roles.values():
            if role.handle.is_alive():
                role.handle.terminate()
