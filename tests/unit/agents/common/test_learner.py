"""The shared learner shell against a fake core: publication cadence, commands, budgets,
checkpoints (save / restore), reports, and a dying data thread."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import torch
from fakes import FakeInbox, FakeLink, FakeSink

from rlfleet.agents.common.checkpoint import latest_checkpoint, read_state
from rlfleet.agents.common.learner import BatchQueue, CheckpointedCounters, LagMeter, LearnerShell
from rlfleet.cli.presets import build_config
from rlfleet.errors import TransportError
from rlfleet.transport.ports import CMD_CHECKPOINT, CMD_STOP

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class FakeCore:
    """A core whose data thread puts numbered batches; ``fail_after`` makes it raise."""

    def __init__(self, fail_after: int | None = None) -> None:
        torch.manual_seed(0)
        self.counters = CheckpointedCounters()
        net = torch.nn.Linear(3, 2)
        self.modules = {"online": net, "target": torch.nn.Linear(3, 2)}
        self.optimizer = torch.optim.Adam(net.parameters(), lr=0.1)
        self.batches = BatchQueue(2)
        self.lock = threading.Lock()
        self.fail_after = fail_after
        self.produced = 0
        self.learned: list[int] = []
        self.extra = {"limiter": {"inserted": 0}}
        self.loaded: dict[str, Any] | None = None

    def loops(self, inbox) -> dict:
        def data() -> None:
            if self.fail_after is not None and self.produced >= self.fail_after:
                raise RuntimeError("collect thread died")
            if self.batches.put(self.produced):
                self.produced += 1

        return {"data": data}

    def learn(self, batch: int) -> None:
        self.learned.append(batch)
        self.counters.env_steps += 10

    def report(self) -> dict[str, Any]:
        return {
            "metrics": {"learner/loss": 0.5, "learner/none": None},
            "progress": {"replay": self.produced},
            "notice": None,
            "rejected": 2,
            "version_lag": 1.5,
        }

    def state(self) -> dict[str, Any]:
        return dict(self.extra)

    def load_state(self, state: dict[str, Any], folder: Path) -> None:
        self.loaded = state

    def snapshot(self):
        return None

    def before_serving(self, notice) -> None:
        notice("warming up")


def config(*overrides: str):
    return build_config("cartpole", ["run.log_interval_s=0.01", *overrides])


def test_the_shell_publishes_reports_obeys_commands_and_checkpoints(tmp_path):
    cfg = config("learner.publish_interval=3", "learner.max_updates=5")
    core, sink = FakeCore(), FakeSink()
    inbox = FakeInbox()
    inbox.rejected = 3
    link = FakeLink([CMD_CHECKPOINT, None, CMD_STOP])
    LearnerShell(core, cfg, tmp_path, sink, link, inbox).serve()
    kinds = link.kinds()
    assert kinds[0] == "learner_stats" and link.sent[0][1]["notice"] == "warming up"
    assert kinds[1] == "learner_ready" and kinds[-1] == "stopped"
    assert "checkpoint" in kinds and kinds.count("budget_reached") <= 1
    n = core.counters.updates
    assert core.learned == list(range(n)), "every batch learned once, in order"
    assert sink.versions == list(range(1, len(sink.versions) + 1))
    assert len(sink.versions) == 1 + n // 3 + 1  # first, every 3 updates, final
    stats = [m for k, m in link.sent if k == "learner_stats" and m["notice"] is None]
    assert stats, "regular reports"
    metrics = stats[-1]["metrics"]
    assert metrics["learner/loss"] == 0.5 and "learner/none" not in metrics
    assert metrics["transport/rejected"] == 5.0 and metrics["params/version_lag"] == 1.5
    assert 0.0 <= metrics["learner/wait_fraction"] <= 1.0
    assert set(stats[-1]["progress"]) == {"replay"}
    # the commanded checkpoint's duration is reported once, in the report after it
    saved = [
        m["metrics"]["learner/checkpoint_ms"]
        for m in stats
        if "learner/checkpoint_ms" in m["metrics"]
    ]
    assert len(saved) == 1 and saved[0] > 0
    final = latest_checkpoint(tmp_path)
    assert final is not None and str(final) == link.of_kind("stopped")[0]["path"]
    state = read_state(final)
    assert state["counters"]["updates"] == n and state["limiter"] == {"inserted": 0}
    assert state["config"]["run"]["algorithm"] == "apex"


def test_a_checkpoint_restores_modules_optimizer_counters_and_core_state(tmp_path):
    cfg = config()
    core = FakeCore()
    shell = LearnerShell(core, cfg, tmp_path, FakeSink(), FakeLink(), None)
    core.counters.updates, core.counters.env_steps = 7, 70
    loss = core.modules["online"](torch.ones(4, 3)).sum()
    loss.backward()
    core.optimizer.step()
    path = shell.save()
    other = FakeCore()
    torch.nn.init.zeros_(other.modules["online"].weight)
    LearnerShell(other, cfg, tmp_path, FakeSink(), FakeLink(), None).restore(path)
    for name in ("online", "target"):
        for a, b in zip(
            core.modules[name].parameters(), other.modules[name].parameters(), strict=True
        ):
            assert torch.equal(a, b)
    assert other.counters.updates == 7 and other.counters.env_steps == 70
    assert other.loaded is not None and other.loaded["limiter"] == {"inserted": 0}
    assert other.optimizer.state_dict()["state"][0]["step"] == 1


def test_a_dying_data_thread_is_reported_and_raised(tmp_path):
    core, link = FakeCore(fail_after=3), FakeLink()
    with pytest.raises(RuntimeError, match="collect thread died"):
        LearnerShell(
            core, config("run.log_interval_s=100"), tmp_path, FakeSink(), link, None
        ).serve()
    assert link.kinds()[-1] == "error"
    assert "collect thread died" in link.sent[-1][1]["message"]


def test_lag_meter_means_and_maxima():
    lag = LagMeter()
    assert lag.take() == (None, None)
    lag.add(torch.tensor([1, 3]).numpy())
    lag.add_total(10, 5)
    assert lag.take() == (14 / 7, 3.0)
    assert lag.take() == (None, None)


def test_batch_queue_put_gives_up_once_closed():
    q = BatchQueue(1)
    assert q.put("a")
    done: list[bool] = []
    t = threading.Thread(target=lambda: done.append(q.put("b")))
    t.start()
    q.close()
    t.join(timeout=2.0)
    assert done == [False] and q.get(0.01) == "a" and q.get(0.01) is None


class DeadLauncherLink(FakeLink):
    """The launcher was SIGKILLed after ``alive_sends`` reports: sends fail like a broken
    socket (TransportError), and no stop command ever arrives."""

    def __init__(self, alive_sends: int) -> None:
        super().__init__()
        self.alive_sends = alive_sends

    def send(self, kind: str, **meta) -> None:
        if len(self.sent) >= self.alive_sends:
            raise TransportError("launcher link lost: [Errno 32] Broken pipe")
        super().send(kind, **meta)


def test_a_lost_supervisor_link_stops_the_learner_with_a_final_checkpoint(tmp_path):
    core, sink, link = FakeCore(), FakeSink(), DeadLauncherLink(alive_sends=4)
    shell = LearnerShell(core, config(), tmp_path, sink, link, None)
    shell.serve()  # returns: a lost link is a stop, not a crash
    assert shell.link_lost
    final = latest_checkpoint(tmp_path)
    assert final is not None, "the run is not lost with its launcher"
    assert read_state(final)["counters"]["updates"] == core.counters.updates > 0
    assert sink.versions[-1] == core.counters.version, "the last parameters are published"


def test_checkpoints_record_elapsed_time_on_the_runs_clock(tmp_path):
    core, link = FakeCore(), FakeLink([CMD_STOP])
    LearnerShell(core, config(), tmp_path, FakeSink(), link, None, clock=lambda: 1234.5).serve()
    assert read_state(latest_checkpoint(tmp_path))["counters"]["elapsed_s"] == 1234.5
