"""The replay service's parts without a broker: config checks, tokens on the wire, the
learner's RemoteStore (counters, validation, priorities) and the service's message handling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rlfleet.agents.apex.config import ApexConfig
from rlfleet.agents.apex.remote_store import RemoteStore
from rlfleet.agents.apex.service import ReplayService
from rlfleet.agents.apex.service_messages import (
    ABS_TD,
    DEMAND_KIND,
    GENERATION,
    INDEX,
    PRIORITIES_KIND,
    apply_priorities,
    token_arrays,
)
from rlfleet.agents.apex.stores import build_store
from rlfleet.agents.registry import config_from_dict, spec_of
from rlfleet.config import from_dict
from rlfleet.envs.record import record_episodes
from rlfleet.envs.spec import probe_env
from rlfleet.errors import ConfigError, ReplayError
from rlfleet.fleet.prepare import check_service
from rlfleet.transport.codec import Message, decode, encode
from rlfleet.transport.ports import ServiceEnds

ENV = probe_env("CartPole-v1")  # observations float32 (4,), two actions


def config(**sections: dict[str, Any]) -> ApexConfig:
    data: dict[str, dict[str, Any]] = {
        "transport": {"kind": "redis", "replay_service": True},
        "replay": {"capacity": 64, "learning_starts": 8, "samples_per_insert": 0.0},
        "learner": {"batch_size": 4},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return from_dict(ApexConfig, data)


class FakeInbox:
    def __init__(self, messages: list[Message] | None = None) -> None:
        self.messages = list(messages or [])
        self.rejected = 0

    def pull(self, timeout: float | None, max_messages: int = 64) -> list[Message]:
        out, self.messages = self.messages[:max_messages], self.messages[max_messages:]
        return out


class FakeSink:
    def __init__(self) -> None:
        self.sent: list[Message] = []

    def push(self, payload: bytes) -> bool:
        self.sent.append(decode(payload))
        return True


def batch(service: str, **counts: int) -> Message:
    b = 4
    arrays = {
        "obs": np.zeros((b, 4), np.float32),
        "action": np.zeros(b, np.int64),
        "reward": np.zeros(b, np.float32),
        "discount": np.ones(b, np.float32),
        "next_obs": np.zeros((b, 4), np.float32),
        "sample_weights": np.ones(b, np.float32),
        "sample_index": np.arange(b, dtype=np.int64),
        "sample_generation": np.zeros(b, np.int64),
    }
    meta = {"service": service, "split": b, "size": 10, "demos": 0}
    meta.update({k: 0 for k in ("inserted", "env_steps", "sampled", "messages")})
    meta.update({"policy_versions": 0, "rejected": 0, **counts})
    return decode(encode("replay_batch", arrays, meta))


# ---- config ---------------------------------------------------------------------------------
def test_the_switch_needs_the_redis_transport():
    with pytest.raises(ConfigError, match="replay_service = true needs transport.kind = 'redis'"):
        from_dict(ApexConfig, {"transport": {"replay_service": True}})


def check(cfg: Any) -> None:
    check_service(cfg, spec_of(cfg))


def test_service_refuses_agents_without_one_and_replay_snapshots():
    with pytest.raises(ConfigError, match="snapshot_replay"):
        check(config(run={"snapshot_replay": True}))
    impala = config_from_dict(
        {"run": {"algorithm": "impala"}, "transport": {"kind": "redis", "replay_service": True}}
    )
    with pytest.raises(ConfigError, match="'impala' .* has none"):
        check(impala)
    check(config())  # the plain case passes


# ---- tokens ---------------------------------------------------------------------------------
def test_single_store_token_round_trip_applies_priorities():
    cfg = config(replay={"alpha": 1.0, "priority_eps": 1e-6})
    store = build_store(cfg, ENV, seed=0)
    n = 16
    store.add(
        {
            "obs": np.zeros((n, 4), np.float32),
            "action": np.zeros(n, np.int64),
            "reward": np.zeros(n, np.float32),
            "discount": np.ones(n, np.float32),
            "next_obs": np.zeros((n, 4), np.float32),
        },
        np.ones(n, np.float32),
    )
    drawn = store.draw(4, 0.4)
    index, generation, split = token_arrays(drawn.token)
    assert index.dtype == generation.dtype == np.int64 and split == 4
    apply_priorities(store, index, generation, np.full(4, 9.0), split)
    np.testing.assert_allclose(store.replay.priorities(index), 9.0, rtol=1e-5)


def test_mixed_store_token_splits_agent_and_expert_rows(tmp_path: Path):
    demos = tmp_path / "d.npz"
    record_episodes("CartPole-v1", lambda o: int(o[2] > 0), 1, seed=0, path=demos, source="t")
    cfg = config(
        dqfd={"mode": "apex-dqfd", "demos": str(demos), "expert_fraction": 0.5},
        replay={"alpha": 1.0, "priority_eps": 1e-6},
    )
    store = build_store(cfg, ENV, seed=0)
    n = 16
    store.add(
        {
            "obs": np.zeros((n, 4), np.float32),
            "action": np.zeros(n, np.int64),
            "reward": np.zeros(n, np.float32),
            "discount": np.ones(n, np.float32),
            "next_obs": np.zeros((n, 4), np.float32),
        },
        np.ones(n, np.float32),
    )
    drawn = store.draw(4, 0.4)
    index, generation, split = token_arrays(drawn.token)
    assert split == 2 and len(index) == 4
    apply_priorities(store, index, generation, np.array([5.0, 5.0, 7.0, 7.0]), split)
    np.testing.assert_allclose(store.agent.priorities(index[:2]), 5.0, rtol=1e-5)
    np.testing.assert_allclose(store.expert.priorities(index[2:]), 7.0, rtol=1e-5)


# ---- the learner's side -----------------------------------------------------------------------
def test_remote_store_hands_over_counter_deltas_per_service_instance():
    inbox = FakeInbox(
        [
            batch("s1", inserted=100, env_steps=100, sampled=8, messages=5, policy_versions=10),
            batch("s1", inserted=150, env_steps=160, sampled=12, messages=8, policy_versions=19),
            batch("s2", inserted=20, env_steps=20, sampled=4, messages=1, policy_versions=9),
        ]
    )
    store = RemoteStore(config(), ENV, inbox, FakeSink())
    store.take(0.4, 0.0)
    store.take(0.4, 0.0)
    done = store.counts()
    assert (done.inserted, done.env_steps, done.sampled) == (150, 160, 12)
    assert (done.messages, done.policy_versions) == (8, 19)
    store.take(0.4, 0.0)  # a restarted service counts from zero again
    done = store.counts()
    assert (done.inserted, done.sampled, done.policy_versions) == (20, 4, 9)
    assert len(store) == 10


def test_remote_store_rejects_bad_batches_and_sends_priorities_with_the_token():
    good = batch("s1")
    bad = Message("replay_batch", dict(good.meta), dict(good.arrays))
    bad.arrays["obs"] = np.zeros((4, 5), np.float32)
    negative = Message("replay_batch", {**good.meta, "inserted": -3}, dict(good.arrays))
    sink = FakeSink()
    store = RemoteStore(config(), ENV, FakeInbox([bad, negative, good]), sink)
    assert store.take(0.4, 0.0) is None and store.take(0.4, 0.0) is None
    assert store.rejected == 2 and "inserted" in store.last_error
    drawn = store.take(0.4, 0.0)
    assert drawn is not None and drawn.fields["obs"].flags.writeable
    store.update(drawn.token, np.full(4, 2.5, np.float32))
    assert [m.kind for m in sink.sent] == [DEMAND_KIND, PRIORITIES_KIND]
    update = sink.sent[-1]
    assert update.meta["service"] == "s1" and update.meta["split"] == 4
    np.testing.assert_array_equal(update.arrays[INDEX], np.arange(4))
    with pytest.raises(ReplayError, match="priority nan"):
        store.update(drawn.token, np.array([1.0, np.nan, 1.0, 1.0], np.float32))


# ---- the service's side -------------------------------------------------------------------------
def test_service_takes_mode_and_beta_and_counts_what_it_cannot_apply():
    ends = ServiceEnds(FakeInbox(), FakeInbox(), FakeSink())
    service = ReplayService(config(), ENV, 0, ends, service_id="me")
    service.on_update(decode(encode(DEMAND_KIND, None, {"mode": "pretrain", "beta": 0.7})))
    assert service.mode == "pretrain" and service.beta == 0.7
    service.on_update(decode(encode(DEMAND_KIND, None, {"mode": "bogus", "beta": 7})))
    assert service.mode == "pretrain" and service.beta == 0.7  # invalid values are ignored
    arrays = {
        INDEX: np.zeros(2, np.int64),
        GENERATION: np.zeros(2, np.int64),
        ABS_TD: np.ones(2, np.float32),
    }
    service.on_update(decode(encode(PRIORITIES_KIND, arrays, {"service": "old", "split": 2})))
    assert service.foreign == 1 and service.updates == 0
    service.on_update(decode(encode(PRIORITIES_KIND, arrays, {"service": "me", "split": 2})))
    assert service.malformed == 1 and "empty slot" in service.last_error  # nothing stored yet
    assert service.room.is_set()  # every message from the learner means a consumed batch


def test_a_learner_without_batches_from_the_service_says_how_long_it_has_waited():
    from rlfleet.agents.apex.learner import SERVICE_WAIT_NOTICE_S, ApexLearner
    from rlfleet.fleet.progress import Progress

    store = RemoteStore(config(), ENV, FakeInbox([]), FakeSink())
    learner = ApexLearner(config(), ENV, 0, store)
    learner.last_remote_batch -= 42.0  # as if 42 s passed without a batch
    assert learner.take_remote() is None
    notice = learner.report()["notice"]
    assert "no batch from the replay service for 42 s" in notice and "rlfleet replay" in notice

    progress = Progress(config(), enabled=False)
    snapshot = {"wall_s": 50.0, "env_steps": 100, "steps_per_s": 0.0, "updates": 0}
    snapshot.update(updates_per_s=0.0, progress={"replay": 0}, episode_return=None)
    snapshot.update(last_eval=None, solved_at_s=None, actors=2, restarts=0)
    line = progress.render({**snapshot, "notice": notice})
    assert line.startswith("CartPole-v1") and notice in line
    learner.last_remote_batch += 42.0 - SERVICE_WAIT_NOTICE_S / 2
    assert learner.report()["notice"] is None
    quiet = progress.render({**snapshot, "notice": None})
    assert "replay service" not in quiet and "env steps" in quiet and "replay 0" in quiet
