"""The learner watch every host role uses: stop flag first, a grace period for a missing learner,
and an unreachable server counted as alive."""

from __future__ import annotations

from rlfleet.fleet.liveness import LearnerWatch


def test_the_watch_waits_out_the_grace_and_unknown_is_not_dead():
    now = [0.0]
    alive: list[bool | None] = [True]
    stop = [False]
    watch = LearnerWatch(lambda: stop[0], lambda: alive[0], grace_s=10.0, clock=lambda: now[0])
    assert watch.end_reason() is None
    alive[0], now[0] = False, 5.0
    assert watch.end_reason() is None
    alive[0], now[0] = None, 9.0  # Redis away: unknown, the grace starts again
    assert watch.end_reason() is None
    alive[0], now[0] = False, 18.0
    assert watch.end_reason() is None
    now[0] = 19.5
    assert watch.end_reason() == "no learner"
    watch.restart_grace()
    assert watch.end_reason() is None
    stop[0] = True
    assert watch.end_reason() == "run stopped"
