"""The DAgger learner core: D in the replay storage, synchronous iterations (updates granted once
the current policy's labels are in), the label budget, bad labels, and D in checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fakes import FakeInbox, FakeSink

from rlfleet.agents.common.learner import LearnerShell
from rlfleet.agents.dagger.learner import DaggerLearner
from rlfleet.agents.dagger.messages import encode_labels
from rlfleet.cli.presets import build_config
from rlfleet.envs.spec import probe_env
from rlfleet.transport.codec import Message, decode

ENV = probe_env("CartPole-v1")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def learner(*overrides: str) -> DaggerLearner:
    config = build_config(
        "dagger-cartpole",
        [
            "dagger.labels_per_iteration=100",
            "dagger.max_labels=300",
            "learner.updates_per_iteration=4",
            "learner.batch_size=16",
            *overrides,
        ],
    )
    return DaggerLearner(config, ENV, seed=0)


def labels(n: int, version: int, seed: int = 0) -> Message:
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 4)).astype(np.float32)
    return decode(encode_labels(obs, (obs[:, 2] > 0).astype(np.int64), 0, version, n))


def drain(core: DaggerLearner, shell: LearnerShell) -> int:
    """Draw and learn the batches of the iteration granted now (0 if none is)."""
    n, granted = 0, None
    while granted is None or core.drawn < granted:
        core.prefetch_once()
        granted = core.counters.granted if granted is None else granted
        if not shell.step(timeout=0.01):
            break
        n += 1
    return n


def test_each_iteration_takes_its_quota_from_its_own_policy_then_trains(tmp_path):
    core = learner()
    shell = LearnerShell(core, core.config, tmp_path, FakeSink(), None, None)
    shell.publish()  # version 1: iteration 1
    core.insert(labels(60, version=1))
    assert drain(core, shell) == 0, "60 of 100 labels: nothing to train on yet"
    core.insert(labels(60, version=1, seed=1))  # 40 complete the quota, 20 are surplus
    assert len(core.store) == 100 and core.counters.discarded == 20
    assert drain(core, shell) == 4 and core.counters.granted == 4
    assert drain(core, shell) == 0, "no second grant before the shell publishes"
    core.insert(labels(30, version=1, seed=2))  # the quota is met: not this iteration's data
    assert len(core.store) == 100 and core.counters.discarded == 50
    shell.publish()  # the shell publishes after updates_per_iteration: iteration 2
    core.insert(labels(80, version=1, seed=3))  # a lagging actor: not pi_2's states
    assert len(core.store) == 100 and core.counters.discarded == 130 and drain(core, shell) == 0
    core.insert(labels(100, version=2, seed=4))
    assert core.counters.labels == 200 and drain(core, shell) == 4
    shell.publish()  # iteration 3 meets the budget of 300
    core.insert(labels(150, version=3, seed=5))
    assert core.counters.labels == 300 and core.budget_left == 0
    assert drain(core, shell) == 4, "the budget is spent: train on D"
    assert drain(core, shell) == 0, "one iteration per published policy"
    shell.publish()
    assert drain(core, shell) == 4, "and keep training on D, iteration after iteration"
    core.insert(labels(10, version=4, seed=6))
    assert core.counters.labels == 300, "nothing beyond the budget"
    assert core.state()["labels_by_version"] == {"1": 0, "2": 100, "3": 200, "4": 300}


def test_labels_outside_the_action_space_or_non_finite_states_are_refused_at_the_inbox():
    from rlfleet.agents.dagger.messages import message_check

    check = message_check(None, ENV)
    assert check(labels(5, version=1)) == ""
    bad = labels(5, version=1)
    bad.arrays["expert_action"] = np.full(5, 2, np.int64)
    assert "outside 0..1" in check(bad)
    nan = labels(5, version=1)
    nan.arrays["obs"] = np.full((5, 4), np.nan, np.float32)
    assert check(nan) == "non-finite obs"


def test_the_insert_thread_stops_reading_at_the_budget():
    core = learner("dagger.max_labels=100")
    inbox = FakeInbox([labels(100, 1), labels(10, 1, seed=1)])
    core.counters.version = 1
    insert = core.loops(inbox)["insert"]
    insert()
    insert()
    assert core.counters.labels == 100 and len(inbox.messages) == 1, "the second stays queued"


def test_learning_moves_towards_the_labels_and_d_survives_a_checkpoint(tmp_path):
    core = learner("learner.lr=0.01", "learner.updates_per_iteration=60")
    shell = LearnerShell(core, core.config, tmp_path, FakeSink(), None, None)
    shell.publish()
    core.insert(labels(100, version=1))
    assert drain(core, shell) == 60
    metrics = core.report()["metrics"]
    assert metrics["learner/accuracy"] > 0.8 and metrics["dagger/labels"] == 100.0
    path = shell.save()
    restored = learner()
    LearnerShell(restored, restored.config, tmp_path, FakeSink(), None, None).restore(path)
    assert len(restored.store) == 100 and restored.counters.labels == 100
    assert restored.counters.granted == 60 and restored.drawn == 60
    np.testing.assert_array_equal(
        restored.store.get(np.arange(100))["expert_action"],
        core.store.get(np.arange(100))["expert_action"],
    )
    for a, b in zip(core.net.parameters(), restored.net.parameters(), strict=True):
        assert torch.equal(a, b)
