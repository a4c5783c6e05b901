"""The Ape-X DPG learner core against a fake inbox: the shared insert thread stores the actors'
priorities, prefetch draws weighted batches, learning writes new priorities back, and the
counters, report and checkpoint state add up."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import FakeInbox

from rlfleet.agents.dpg.learner import DPGLearner
from rlfleet.cli.presets import build_config
from rlfleet.envs.spec import probe_env
from rlfleet.transport.codec import Message

SETS = [
    "model.hidden=[16]",
    "replay.capacity=1000",
    "replay.learning_starts=40",
    "replay.samples_per_insert=0",
    "learner.batch_size=16",
    "actor.push_size=32",
]


def _message(n, seed, version=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "obs": rng.normal(size=(n, 3)).astype(np.float32),
        "next_obs": rng.normal(size=(n, 3)).astype(np.float32),
        "action": rng.uniform(-2, 2, size=(n, 1)).astype(np.float32),
        "reward": rng.normal(size=n).astype(np.float32),
        "discount": np.full(n, 0.9, np.float32),
        "priority": rng.uniform(0.1, 2.0, size=n).astype(np.float32),
    }
    return Message(
        kind="dpg_experience", meta={"env_steps": n, "policy_version": version}, arrays=arrays
    )


@pytest.fixture
def learner():
    return DPGLearner(build_config("dpg-pendulum", SETS), probe_env("Pendulum-v1"), seed=0)


def test_insert_prefetch_learn_report(learner):
    inbox = FakeInbox([_message(32, 0), _message(32, 1)])
    loops = learner.loops(inbox)
    assert set(loops) == {"insert", "prefetch"}
    loops["prefetch"]()  # 0 stored < learning_starts: nothing drawn yet
    assert learner.batches.qsize() == 0
    loops["insert"]()
    loops["insert"]()
    assert len(learner.feed) == 64 and learner.counters.env_steps == 64
    loops["prefetch"]()
    token, fields, weights = learner.batches.get(timeout=1.0)
    assert fields["action"].shape == (16, 1) and weights.shape == (16,)
    before = learner.feed.replay.priorities(token[0]).copy()
    learner.learn((token, fields, weights))
    learner.counters.updates += 1
    after = learner.feed.replay.priorities(token[0])
    assert not np.allclose(before, after), "the learner's |TD| replaced the actors' priorities"
    report = learner.report()
    assert report["metrics"]["replay/size"] == 64.0
    assert report["metrics"]["learner/loss"] is not None
    assert report["metrics"]["replay/samples_per_insert"] == pytest.approx(16 / 64)
    assert report["version_lag"] == 0.0
    assert learner.state()["replay_size"] == 64


def test_a_message_without_transition_fields_is_counted_and_dropped(learner):
    bad = _message(4, 0)
    del bad.arrays["priority"]
    learner.feed.insert(bad)
    assert len(learner.feed) == 0 and learner.report()["rejected"] == 1
