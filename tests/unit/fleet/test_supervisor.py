"""The supervisor against fake placements: restarts with a new incarnation, a dead learner ends
the run, roles that keep dying end it too, and thread placement behaves like processes."""

from __future__ import annotations

import threading
import time

from rlfleet.fleet.supervisor import Supervisor, ThreadPlacement


class FakeHandle:
    def __init__(self) -> None:
        self.alive = True
        self.exitcode: int | None = None
        self.terminated = False

    def is_alive(self) -> bool:
        return self.alive

    def join(self, timeout: float | None = None) -> None:
        return None

    def terminate(self) -> None:
        self.terminated = True

    def die(self, code: int = 1) -> None:
        self.alive, self.exitcode = False, code


class FakePlacement:
    name = "fake"

    def __init__(self) -> None:
        self.started: list[tuple[str, tuple]] = []
        self.handles: list[FakeHandle] = []

    def start(self, name, target, args):
        self.started.append((name, args))
        self.handles.append(FakeHandle())
        return self.handles[-1]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def launch(kind: str, index: int, incarnation: int):
    return print, (kind, index, incarnation)


def fleet(**kwargs) -> tuple[Supervisor, FakePlacement, Clock]:
    placement, clock = FakePlacement(), Clock()
    supervisor = Supervisor(placement, launch, clock=clock, **kwargs)
    supervisor.start("learner")
    for i in range(2):
        supervisor.start("actor", i)
    supervisor.start("evaluator")
    return supervisor, placement, clock


def test_a_dead_actor_is_restarted_as_its_next_incarnation():
    supervisor, placement, _ = fleet()
    supervisor.get("actor", 1).handle.die()
    assert supervisor.check() is None
    role = supervisor.get("actor", 1)
    assert role.incarnation == 1 and role.handle.is_alive()
    assert placement.started[-1] == ("rlfleet-actor-1", ("actor", 1, 1))
    assert supervisor.restarts == {"actor": 1}
    supervisor.get("evaluator").handle.die()
    assert supervisor.check() is None and supervisor.restarts == {"actor": 1, "evaluator": 1}


def test_a_dead_learner_ends_the_run_with_its_exit_code():
    supervisor, placement, _ = fleet()
    supervisor.get("learner").handle.die(code=-9)
    assert supervisor.check() == ("learner failed", "exited with code -9")
    assert len(placement.started) == 4, "the learner is never restarted"


def test_roles_that_keep_dying_end_the_run_but_old_deaths_expire():
    supervisor, _, clock = fleet(max_restarts_per_minute=2)  # 3 restartable roles: 6 a minute
    for _ in range(6):
        supervisor.get("actor", 0).handle.die()
        assert supervisor.check() is None
        clock.now += 1.0
    clock.now += 60.0  # a minute later the budget is whole again
    for _ in range(6):
        supervisor.get("actor", 0).handle.die()
        assert supervisor.check() is None
    supervisor.get("actor", 0).handle.die()
    assert supervisor.check() == ("roles keep failing", "actor processes keep dying")


def test_terminate_all_ends_only_live_roles():
    supervisor, placement, _ = fleet()
    placement.handles[0].die()
    supervisor.terminate_all()
    assert [h.terminated for h in placement.handles] == [False, True, True, True]


def test_thread_placement_reports_exit_codes_like_processes():
    started = threading.Event()

    def ok(x: int) -> None:
        started.wait(5)

    def boom() -> None:
        raise RuntimeError("role failed")

    placement = ThreadPlacement()
    good, bad = placement.start("good", ok, (1,)), placement.start("bad", boom, ())
    bad.join(5)
    assert not bad.is_alive() and bad.exitcode == 1 and isinstance(bad.error, RuntimeError)
    assert good.is_alive() and good.exitcode is None
    started.set()
    good.join(5)
    deadline = time.monotonic() + 5
    while good.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert good.exitcode == 0
