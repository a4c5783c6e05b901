"""The learner watch every host role uses: stop flag first, a grace period for a missing learner,
and an unreachable server counted as alive."""

from __future__ import annotations

from fakes import FakeLink

from rlfleet.fleet.liveness import LearnerWatch, WatchedLink
from rlfleet.transport.ports import CMD_STOP


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


def test_an_actors_link_says_stop_once_the_learner_is_gone_for_the_grace():
    """A remote actor process polls its link: with its host supervisor killed, nothing else
    would ever stop it after the learner host died."""
    now = [0.0]
    alive = [True]
    watch = LearnerWatch(lambda: False, lambda: alive[0], grace_s=10.0, clock=lambda: now[0])
    inner = FakeLink()
    link = WatchedLink(inner, watch, check_interval_s=1.0, clock=lambda: now[0])
    link.send("actor_stats", env_steps=5)
    assert inner.kinds() == ["actor_stats"]
    assert link.poll_command() is None
    alive[0], now[0] = False, 8.0
    assert link.poll_command() is None  # within the grace
    now[0] = 11.0
    assert link.poll_command() == CMD_STOP and link.end_reason == "no learner"
    assert link.poll_command() == CMD_STOP  # and it stays stopped


def test_the_links_own_commands_pass_through_and_checks_are_rate_limited():
    calls = [0]

    def learner_alive() -> bool:
        calls[0] += 1
        return True

    now = [0.0]
    watch = LearnerWatch(lambda: False, learner_alive, grace_s=10.0, clock=lambda: now[0])
    link = WatchedLink(FakeLink([None, CMD_STOP]), watch, clock=lambda: now[0])
    assert link.poll_command() is None and calls[0] == 1
    assert link.poll_command() == CMD_STOP and calls[0] == 1  # the stop flag, via the link
    now[0] = 0.5
    assert link.poll_command() is None and calls[0] == 1  # not yet due
