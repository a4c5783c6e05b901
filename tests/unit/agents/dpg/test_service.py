"""Ape-X DPG's replay service in one process, without a broker: actors' Box transitions go into
the service's replay, its batches reach a DPGLearner through the RemoteStore, and the learner's
|TD| comes back and re-prioritises the service's replay; the learner's counters are the
service's."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import FakeInbox, FakeOutbox

from rlfleet.agents.common.service_messages import PRIORITIES_KIND
from rlfleet.agents.dpg.learner import DPGLearner
from rlfleet.agents.dpg.service import RemoteStore, ReplayService
from rlfleet.cli.presets import build_config
from rlfleet.envs.spec import probe_env
from rlfleet.transport.codec import Message, decode
from rlfleet.transport.ports import ServiceEnds

ENV = probe_env("Pendulum-v1")
SETS = [
    "model.hidden=[16]",
    "replay.capacity=1000",
    "replay.learning_starts=40",
    "replay.samples_per_insert=0",
    "replay.alpha=1.0",
    "learner.batch_size=16",
    "actor.push_size=32",
    "transport.kind=redis",
    "transport.replay_service=true",
]


def _message(n: int, seed: int, version: int) -> Message:
    rng = np.random.default_rng(seed)
    arrays = {
        "obs": rng.normal(size=(n, 3)).astype(np.float32),
        "next_obs": rng.normal(size=(n, 3)).astype(np.float32),
        "action": rng.uniform(-2, 2, size=(n, 1)).astype(np.float32),
        "reward": rng.normal(size=n).astype(np.float32),
        "discount": np.full(n, 0.9, np.float32),
        "priority": rng.uniform(0.1, 2.0, size=n).astype(np.float32),
    }
    meta = {"env_steps": n, "policy_version": version}
    return Message(kind="dpg_experience", meta=meta, arrays=arrays)


@pytest.fixture
def config():
    return build_config("dpg-pendulum", SETS)


def test_a_dpg_learner_trains_on_service_batches_and_reprioritises_the_services_replay(config):
    ends = ServiceEnds(FakeInbox([_message(32, 0, 1), _message(32, 1, 3)]), FakeInbox(), None)
    service = ReplayService(config, ENV, 0, ends, service_id="svc")
    service.insert_once()
    service.insert_once()
    assert len(service.store) == 64 and service.counts.policy_versions == 4
    assert service.store.replay.fields["action"].shape == (1,)

    sink = FakeOutbox()
    store = RemoteStore(config, ENV, FakeInbox([decode(service.sample_batch())]), sink)
    learner = DPGLearner(config, ENV, seed=0, store=store)
    learner.counters.version = 5
    loops = learner.loops(None)
    assert set(loops) == {"prefetch"}, "the service inserts: the learner has no insert thread"
    loops["prefetch"]()
    token, fields, weights = learner.batches.get(timeout=1.0)
    assert fields["action"].dtype == np.float32 and fields["action"].shape == (16, 1)
    assert weights.shape == (16,) and token[3] == "svc"
    # the service's counters became the learner's (the batch carried them)
    c = learner.counters
    assert (c.inserted, c.env_steps, c.sampled) == (64, 64, 16)
    report = learner.report()
    assert report["metrics"]["replay/size"] == 64.0
    assert report["version_lag"] == pytest.approx(5 - 4 / 2)  # two messages of versions 1, 3
    assert report["notice"] is None and report["rejected"] == 0

    index = token[0]
    before = service.store.replay.priorities(index).copy()
    learner.learn((token, fields, weights))
    update = decode(sink.payloads[-1])
    assert update.kind == PRIORITIES_KIND and update.meta["service"] == "svc"
    service.on_update(update)
    assert service.updates == 1 and service.malformed == 0
    after = service.store.replay.priorities(index)
    assert not np.allclose(before, after), "the learner's |TD| replaced the actors' priorities"
    assert learner.report()["metrics"]["learner/loss"] is not None
