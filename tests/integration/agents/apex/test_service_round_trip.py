"""The replay service against a real redis-server: sampled batches out, priorities back.

The service runs in this process (its own threads) on Redis ends built exactly as ``rlfleet
replay`` builds them; the learner's side is the :class:`RemoteStore` the learner gets when
``transport.replay_service = true``. Item ids are written into ``obs[:, 0]`` so a test can tell
which transitions a batch holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

from rlfleet.agents.apex.config import ApexConfig
from rlfleet.agents.apex.service import ReplayService
from rlfleet.agents.apex.service_messages import (
    ABS_TD,
    BATCH_KIND,
    GENERATION,
    INDEX,
    PRIORITIES_KIND,
)
from rlfleet.agents.apex.spec import SPEC
from rlfleet.config import from_dict
from rlfleet.envs.record import record_episodes
from rlfleet.envs.spec import probe_env
from rlfleet.fleet.addresses import FleetAddresses
from rlfleet.fleet.services import CLAIM_TTL_S, serve_service
from rlfleet.fleet.wiring import learner_ends, service_ends
from rlfleet.math.dqfd import expert_batch_split
from rlfleet.transport.codec import encode
from rlfleet.transport.redis import RedisOutbox, connect, experience_key
from rlfleet.transport.redis.replay import (
    BatchOutbox,
    ServiceClaim,
    priorities_key,
    samples_key,
)

OBS = (4,)
ENV = probe_env("CartPole-v1")  # float32 (4,) observations, two actions


def learner_store(config: ApexConfig, url: str, run: str) -> Any:
    """The learner's end of the service, as the fleet wires it (its own connection)."""
    return learner_ends(config, SPEC, FleetAddresses.remote(url, run), ENV).store


def make_config(**sections: dict[str, Any]) -> ApexConfig:
    data: dict[str, dict[str, Any]] = {
        "transport": {"kind": "redis", "replay_service": True, "replay_batches": 2},
        "replay": {
            "capacity": 64,
            "learning_starts": 8,
            "samples_per_insert": 0.0,  # no rate limit: the tests pace themselves
            "alpha": 1.0,
            "priority_eps": 1e-6,
        },
        "learner": {"batch_size": 8},
        "actor": {"push_size": 16},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return from_dict(ApexConfig, data)


def experience(ids: np.ndarray, version: int = 3, one_step: bool = False) -> bytes:
    n = len(ids)
    obs = np.zeros((n, *OBS), np.float32)
    obs[:, 0] = ids
    arrays = {
        "obs": obs,
        "action": np.zeros(n, np.int64),
        "reward": np.ones(n, np.float32),
        "discount": np.full(n, 0.99, np.float32),
        "next_obs": obs + 0.5,
        "priority": np.ones(n, np.float32),
    }
    if one_step:
        arrays.update(reward_1=arrays["reward"], discount_1=arrays["discount"], next_obs_1=obs)
    return encode("experience", arrays, {"actor": 0, "policy_version": version, "env_steps": n})


def push_items(client: Any, run: str, start: int, count: int, per_message: int = 16) -> None:
    outbox = RedisOutbox(client, run, "a0", max_queue=1024, max_backlog=1024)
    for lo in range(start, start + count, per_message):
        outbox.push(experience(np.arange(lo, min(lo + per_message, start + count))))
    assert outbox.flush(5.0) and outbox.dropped == 0


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@contextmanager
def running_service(config: ApexConfig, client: Any, run: str) -> Iterator[ReplayService]:
    ends, claim = service_ends(config, SPEC, client, run, "replay-test", ENV, CLAIM_TTL_S)
    assert claim.acquire()
    service = ReplayService(config, ENV, 0, ends, service_id="replay-test")
    service.start()
    try:
        yield service
    finally:
        service.stop()  # re-raises any error of the service's threads


def take(store: Any, timeout: float = 5.0) -> Any:
    drawn = store.take(0.4, timeout=timeout)
    assert drawn is not None, "no batch from the service"
    return drawn


def ids_of(drawn: Any) -> np.ndarray:
    return drawn.fields["obs"][:, 0].astype(np.int64)


def test_batches_carry_fields_weights_token_and_counters_and_priorities_steer_sampling(
    redis_server,
):
    config = make_config()
    client, run = connect(redis_server.url), "rs-round-trip"
    push_items(client, run, 0, 64)
    with running_service(config, client, run) as service:
        wait_until(lambda: service.counts.inserted == 64)
        store = learner_store(config, redis_server.url, run)
        first = take(store)
        assert first.fields["obs"].shape == (8, 4) and first.fields["action"].dtype == np.int64
        assert first.weights.dtype == np.float32 and first.weights.shape == (8,)
        index, generation, split, owner = first.token
        assert index.shape == generation.shape == (8,) and split == 8 and owner == "replay-test"
        # each batch carries the counters at its sampling time; the deltas add up
        done = [store.counts()]
        for _ in range(config.transport.replay_batches + 2):
            take(store)
            done.append(store.counts())
        assert sum(d.inserted for d in done) == sum(d.env_steps for d in done) == 64
        assert sum(d.messages for d in done) == 4 and sum(d.policy_versions for d in done) == 12
        assert sum(d.sampled for d in done) >= 8 * len(done)
        assert len(store) == 64 and store.counts().inserted == 0  # handed over once

        # one item gets a huge priority, the rest of the batch a tiny one
        target = ids_of(first)[0]
        slot = int(index[0])
        store.update(first.token, np.where(ids_of(first) == target, 1000.0, 1e-3))
        wait_until(lambda: service.updates >= 1)
        assert service.store.replay.priorities(np.array([slot]))[0] == pytest.approx(1000.0)
        # batches sampled before the update was applied (waiting in Redis, or held) go first
        for _ in range(config.transport.replay_batches + 2):
            take(store)
        rows = np.concatenate([ids_of(take(store)) for _ in range(5)])
        assert np.mean(rows == target) > 0.8, np.bincount(rows)
        assert service.malformed == 0 and service.foreign == 0


def test_stale_and_foreign_updates_are_ignored(redis_server):
    config = make_config()
    client, run = connect(redis_server.url), "rs-stale"
    push_items(client, run, 0, 64)
    with running_service(config, client, run) as service:
        wait_until(lambda: service.counts.inserted == 64)
        store = learner_store(config, redis_server.url, run)
        old = take(store)
        index = old.token[0]
        push_items(client, run, 100, 64)  # the FIFO ring of 64 slots is rewritten entirely
        wait_until(lambda: service.counts.inserted == 128)
        before = service.store.replay.priorities(index).copy()
        store.update(old.token, np.full(8, 1000.0))
        wait_until(lambda: service.updates >= 1)
        np.testing.assert_array_equal(service.store.replay.priorities(index), before)

        # a batch of another service instance (e.g. before a restart) is not applied at all
        fresh = take(store)
        while ids_of(fresh).min() < 100:  # skip batches sampled before the overwrite
            fresh = take(store)
        foreign = (fresh.token[0], fresh.token[1], fresh.token[2], "replay-other")
        store.update(foreign, np.full(8, 1000.0))
        wait_until(lambda: service.foreign >= 1)
        assert np.all(service.store.replay.priorities(fresh.token[0]) < 10)

        # control: the same update from this instance applies
        store.update(fresh.token, np.full(8, 1000.0))
        wait_until(lambda: service.updates >= 2)
        np.testing.assert_allclose(service.store.replay.priorities(fresh.token[0]), 1000.0)
        assert service.malformed == 0


def test_malformed_messages_are_counted_and_the_service_keeps_serving(redis_server):
    config = make_config()
    client, run = connect(redis_server.url), "rs-malformed"
    # the learner's end first: garbage and ill-shaped batches in the samples list
    store = learner_store(config, redis_server.url, run)
    wrong = {"obs": np.zeros((8, 5), np.float32), INDEX: np.zeros(8, np.int64)}
    client.rpush(samples_key(run), b"\x00garbage", encode(BATCH_KIND, wrong, {"service": "x"}))
    assert store.take(0.4, timeout=0.2) is None and store.take(0.4, timeout=0.2) is None
    assert store.rejected == 2 and "obs" in store.last_error

    push_items(client, run, 0, 64)
    client.rpush(
        experience_key(run), b"RLF\x07 nonsense", encode("experience", {"x": wrong[INDEX]})
    )
    with running_service(config, client, run) as service:
        wait_until(lambda: service.counts.inserted == 64)
        good = take(store)
        slots = good.token[0]
        bad_updates = [
            b"not a message",
            encode("params", {"flat": np.zeros(3, np.float32)}, {"version": 1}),  # foreign kind
            encode(  # wrong dimensions
                PRIORITIES_KIND,
                {INDEX: np.zeros((2, 2), np.int64), GENERATION: np.zeros(4, np.int64)}
                | {ABS_TD: np.ones(4, np.float32)},
                {"service": service.id, "split": 0},
            ),
            encode(  # a slot that does not exist
                PRIORITIES_KIND,
                {INDEX: np.array([9999]), GENERATION: np.zeros(1, np.int64)}
                | {ABS_TD: np.ones(1, np.float32)},
                {"service": service.id, "split": 1},
            ),
            encode(  # not a priority
                PRIORITIES_KIND,
                {INDEX: slots, GENERATION: good.token[1], ABS_TD: np.full(8, np.nan, np.float32)},
                {"service": service.id, "split": 8},
            ),
            encode(  # split beyond the batch
                PRIORITIES_KIND,
                {INDEX: slots, GENERATION: good.token[1], ABS_TD: np.ones(8, np.float32)},
                {"service": service.id, "split": 99},
            ),
        ]
        client.rpush(priorities_key(run), *bad_updates)
        wait_until(lambda: service.malformed >= 4 and service.ends.updates.rejected >= 2)
        assert service.ends.experience.rejected == 2
        assert service.error is None and service.updates == 0
        # still serving: a valid round trip works, and the learner sees the rejected count
        store.update(good.token, np.full(8, 500.0))
        wait_until(lambda: service.updates == 1)
        np.testing.assert_allclose(service.store.replay.priorities(slots), 500.0)
        for _ in range(config.transport.replay_batches + 2):  # past batches sampled earlier
            take(store)
        assert store.rejected >= 2 + 2  # its own two, plus the experience the service refused


def test_dqfd_pretraining_batches_come_from_the_demonstrations(redis_server, tmp_path):
    demos = tmp_path / "cp.npz"
    record_episodes(
        "CartPole-v1", lambda o: int(o[2] > 0), 2, seed=0, path=demos, source="script:t"
    )
    config = make_config(
        dqfd={"mode": "dqfd", "demos": str(demos), "pretrain_updates": 10},
        replay={"capacity": 4000},
    )
    client, run = connect(redis_server.url), "rs-dqfd"
    with running_service(config, client, run) as service:
        store = learner_store(config, redis_server.url, run)
        drawn = store.draw(8, 0.4)  # nothing inserted: the limiter alone would never sample
        assert drawn.fields["is_demo"].all() and "reward_1" in drawn.fields
        assert store.num_demos == service.store.num_demos > 0
        assert service.mode == "pretrain" and service.pretrain_batches >= 1
        assert service.counts.sampled == 0  # pre-training is outside the samples-per-insert count


def test_apex_dqfd_batches_split_agent_and_expert_rows_and_updates_reach_both(
    redis_server, tmp_path
):
    demos = tmp_path / "cp.npz"
    record_episodes(
        "CartPole-v1", lambda o: int(o[2] > 0), 2, seed=0, path=demos, source="script:t"
    )
    config = make_config(dqfd={"mode": "apex-dqfd", "demos": str(demos)})
    client, run = connect(redis_server.url), "rs-apex-dqfd"
    push_items(client, run, 0, 64)
    with running_service(config, client, run) as service:
        wait_until(lambda: service.counts.inserted == 64)
        store = learner_store(config, redis_server.url, run)
        drawn = take(store)
        n_agent, n_expert = expert_batch_split(8, config.dqfd.expert_fraction)
        index, _, split, _ = drawn.token
        assert split == n_agent and n_expert > 0
        np.testing.assert_array_equal(
            drawn.fields["is_demo"], [False] * n_agent + [True] * n_expert
        )
        store.update(drawn.token, np.full(8, 700.0))
        wait_until(lambda: service.updates >= 1)
        np.testing.assert_allclose(service.store.agent.priorities(index[:split]), 700.0)
        np.testing.assert_allclose(service.store.expert.priorities(index[split:]), 700.0)


def test_a_second_service_waits_as_a_standby_until_the_claim_is_free(redis_server):
    config = make_config()
    client, run = connect(redis_server.url), "rs-claim"
    first = ServiceClaim(client, run, "replay-a", ttl=1.0)
    assert first.acquire() is True and first.refresh() is True
    second = ServiceClaim(client, run, "replay-b", ttl=1.0)
    assert second.acquire() is False and second.holder() == "replay-a"

    reasons = iter([None, None, "test over"])
    stats = serve_service(config, SPEC, client, run, 0, lambda wait: next(reasons))
    assert stats["stop_reason"] == "test over" and stats["batches"] == 0  # never served

    first.release()
    assert second.acquire() is True
    outbox = BatchOutbox(client, run, max_batches=1)
    assert outbox.push(b"x") is True and outbox.push(b"y") is False and outbox.full == 1


def test_replay_command_refuses_a_run_whose_learner_samples_itself(redis_server):
    import json

    from rlfleet.config import to_dict
    from rlfleet.errors import ConfigError
    from rlfleet.fleet.hosts.service import RemoteService
    from rlfleet.transport.redis.keys import key

    local = from_dict(ApexConfig, {"transport": {"kind": "redis"}})
    connect(redis_server.url).set(key("rs-local", "config"), json.dumps(to_dict(local)))
    with pytest.raises(ConfigError, match="does not use a replay service"):
        RemoteService(redis_server.url, "rs-local").run(wait_s=5.0)
