"""The shared actor loop against a fake acting step: first parameters, pushes, fetch cadence,
episode statistics, reports and stop."""

from __future__ import annotations

import numpy as np
from fakes import FakeLink, FakeOutbox

from rlfleet.agents.common.actor import run_actor
from rlfleet.agents.spec import ActorSlot
from rlfleet.cli.presets import build_config
from rlfleet.transport.ports import CMD_STOP


class FakeActing:
    """Always pushes left; a message every 4 steps; asks for parameters every 3 steps."""

    instances: list[FakeActing] = []

    def __init__(self, config, env, slot, seed) -> None:
        self.param_count = 5
        self.k = config.env.envs_per_actor
        self.loaded: list[tuple[int, float]] = []
        self.steps = 0
        self.began = False
        FakeActing.instances.append(self)

    def load_params(self, flat: np.ndarray, version: int) -> None:
        self.loaded.append((version, float(flat[0])))

    def begin(self, obs: np.ndarray) -> None:
        assert obs.shape == (self.k, 4)
        self.began = True

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.zeros(self.k, np.int64)

    def observe(self, step) -> list[bytes]:
        self.steps += 1
        return [b"msg-%d" % self.steps] if self.steps % 4 == 0 else []

    def wants_params(self) -> bool:
        return self.steps % 3 == 0

    def waiting(self) -> bool:
        return False


class Params:
    """Version 1 at once, version 2 from the third fetch on."""

    def __init__(self) -> None:
        self.fetches = 0

    def fetch_if_newer(self, have: int, out: np.ndarray) -> int | None:
        self.fetches += 1
        version = 1 if self.fetches < 3 else 2
        if version <= have:
            return None
        out[:] = float(version)
        return version


def run(commands=None, params=None, stop_after_pushes: int = 20):
    config = build_config("cartpole", ["env.envs_per_actor=3"])
    FakeActing.instances.clear()
    outbox = FakeOutbox()

    class Link(FakeLink):
        def poll_command(self, timeout: float = 0.0):
            if self.commands:
                return self.commands.pop(0)
            return CMD_STOP if len(outbox.payloads) >= stop_after_pushes else None

    link = Link(commands)
    run_actor(FakeActing, config, ActorSlot(0, 1, 0), 3, outbox, params or Params(), link)
    return FakeActing.instances[-1], outbox, link


def test_the_loop_pushes_what_the_acting_step_returns_and_fetches_when_asked():
    acting, outbox, link = run()
    assert acting.began and acting.loaded[0] == (1, 1.0) and acting.loaded[-1] == (2, 2.0)
    assert len(acting.loaded) == 2, "only newer versions are loaded"
    assert outbox.payloads[:2] == [b"msg-4", b"msg-8"]
    stats = link.of_kind("actor_stats")
    assert stats[-1]["env_steps"] == 3 * acting.steps
    assert stats[-1]["policy_version"] == 2 and stats[-1]["dropped"] == 0
    # CartPole always pushed left ends episodes within a few dozen steps
    assert sum(len(s["episode_returns"]) for s in stats) > 0
    assert all(r > 0 for s in stats for r in s["episode_returns"])


def test_a_stop_before_the_first_parameters_ends_without_acting():
    class Never:
        def fetch_if_newer(self, have: int, out: np.ndarray) -> int | None:
            return None

    acting, outbox, link = run(commands=[None, CMD_STOP], params=Never())
    assert not acting.began and acting.loaded == [] and outbox.payloads == []
    assert link.sent == []


def test_a_waiting_acting_step_steps_nothing_until_newer_parameters_come():
    class Synchronous(FakeActing):
        """Acts 5 steps per policy version, then waits for the next one."""

        def waiting(self) -> bool:
            return self.steps >= 5 * len(self.loaded)

        def wants_params(self) -> bool:
            return False

    class Slow:
        """Version 1 at once; version 2 only from the 50th fetch on."""

        def __init__(self) -> None:
            self.fetches = 0

        def fetch_if_newer(self, have: int, out: np.ndarray) -> int | None:
            self.fetches += 1
            version = 1 if self.fetches < 50 else 2
            if version <= have:
                return None
            out[:] = float(version)
            return version

    config = build_config("cartpole", ["env.envs_per_actor=2"])
    FakeActing.instances.clear()
    params = Slow()

    class Link(FakeLink):
        def poll_command(self, timeout: float = 0.0):
            return CMD_STOP if params.fetches > 80 else None

    link = Link()
    run_actor(Synchronous, config, ActorSlot(0, 1, 0), 3, FakeOutbox(), params, link)
    acting = FakeActing.instances[-1]
    assert [v for v, _ in acting.loaded] == [1, 2]
    assert acting.steps == 10, "5 steps per version, none while waiting"
    assert link.of_kind("actor_stats")[-1]["env_steps"] == 20


def test_steps_an_outbox_dropped_do_not_count_toward_the_budget():
    """During a Redis outage an actor keeps stepping and its outbox drops the oldest messages:
    the run's env-step budget counts only the steps of messages not dropped."""
    from rlfleet.agents.common.actor import ActorStats

    class DroppingOutbox(FakeOutbox):
        dropped, dropped_steps, backlog = 3, 96, 2

    stats, link = ActorStats(version=4), FakeLink()
    stats.env_steps = 400
    stats.report(link, DroppingOutbox())
    report = link.of_kind("actor_stats")[0]
    assert report["env_steps"] == 304 and report["dropped_steps"] == 96
    assert report["dropped"] == 3
    outbox = DroppingOutbox()
    outbox.dropped_steps, stats.env_steps = 150, 420  # a drop of steps reported already
    stats.report(link, outbox)
    assert link.of_kind("actor_stats")[1]["env_steps"] == 304, "the count never goes down"
    stats.report(link, FakeOutbox())  # a pipe never drops
    assert link.of_kind("actor_stats")[2]["env_steps"] == 420
