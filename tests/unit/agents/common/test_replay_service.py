"""The Ape-X family's replay service parts against fakes, for any agent's fields and tokens: the
service inserts what the agent's ServedReplay names and sends its store's batches with the
token its codec makes, priorities come back through the agent's codec; the learner's
RemoteStore checks batches against the agent's schema; RemoteFeed turns the service's counters
into the learner's; ReplayStore is one replay behind the store interface."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fakes import FakeInbox, FakeOutbox

from rlfleet.agents.common.remote_feed import RemoteFeed
from rlfleet.agents.common.remote_store import (
    SERVICE_WAIT_NOTICE_S,
    RemoteStore,
    waiting_notice,
)
from rlfleet.agents.common.replay_service import ReplayService, ServedReplay
from rlfleet.agents.common.replay_store import Drawn, ReplayStore
from rlfleet.agents.common.service_messages import (
    ABS_TD,
    BATCH_KIND,
    GENERATION,
    INDEX,
    PRIORITIES_KIND,
    WEIGHTS,
    ServiceCounts,
)
from rlfleet.agents.common.service_messages import token_arrays as plain_token_arrays
from rlfleet.agents.registry import spec
from rlfleet.cli.presets import build_config
from rlfleet.envs.spec import probe_env
from rlfleet.errors import ConfigError
from rlfleet.replay import FieldSpec, SamplesPerInsertLimiter
from rlfleet.transport.codec import Message, decode, encode
from rlfleet.transport.ports import ServiceEnds

ENV = probe_env("Pendulum-v1")  # float32 (3,) observations, Box actions of 1 dimension
B = 4
#: A transition with 2-d float actions (any agent's fields: not the env's, not Ape-X's)
FIELDS = {
    "obs": FieldSpec(shape=(3,), dtype=np.float32),
    "action": FieldSpec(shape=(2,), dtype=np.float32),
    "reward": FieldSpec(shape=(), dtype=np.float32),
}


def config(*sets: str) -> Any:
    base = ["transport.kind=redis", "transport.replay_service=true", f"learner.batch_size={B}"]
    base += ["replay.capacity=64", "replay.learning_starts=8", "replay.samples_per_insert=0"]
    base += ["replay.alpha=1.0"]
    return build_config("dpg-pendulum", [*base, *sets])


def experience(ids: np.ndarray, version: int = 3, **extra: np.ndarray) -> Message:
    n = len(ids)
    arrays = {
        "obs": np.repeat(ids[:, None], 3, axis=1).astype(np.float32),
        "action": np.stack([ids, -ids], axis=1).astype(np.float32),
        "reward": np.ones(n, np.float32),
        "priority": np.ones(n, np.float32),
        **extra,
    }
    meta = {"actor": 0, "policy_version": version, "env_steps": n}
    return decode(encode("any_experience", arrays, meta))


class RecordingTokens:
    """An agent's token codec that records what the service asked of it."""

    def __init__(self) -> None:
        self.made = 0
        self.applied: list[tuple[np.ndarray, np.ndarray, int]] = []

    def token_arrays(self, token: Any) -> tuple[np.ndarray, np.ndarray, int]:
        self.made += 1
        index, generation, _ = plain_token_arrays(token)
        return index, generation, 1  # "one agent row": the split is the agent's to say

    def apply_priorities(self, store, index, generation, abs_td, split) -> None:
        self.applied.append((index, abs_td, split))
        store.update((index, generation), abs_td)


def service_with(tokens: RecordingTokens, experiences: list[Message]) -> ReplayService:
    def served(cfg: Any, env: Any, seed: int) -> ServedReplay:
        return ServedReplay(
            store=ReplayStore(cfg.replay, FIELDS, seed),
            fields=tuple(FIELDS),
            limiter=SamplesPerInsertLimiter(None, min_size_to_sample=8, error_buffer=100.0),
            token_arrays=tokens.token_arrays,
            apply_priorities=tokens.apply_priorities,
        )

    ends = ServiceEnds(FakeInbox(experiences), FakeInbox(), FakeOutbox())
    return ReplayService(config(), ENV, 0, ends, "svc", served=served)


def test_the_service_stores_the_agents_fields_and_its_codec_carries_the_token_both_ways():
    tokens = RecordingTokens()
    ids = np.arange(16, dtype=np.float32)
    service = service_with(tokens, [experience(ids, extra=np.zeros(16, np.float32))])
    service.insert_once()
    assert len(service.store) == 16 and set(service.store.replay.fields) == set(FIELDS)
    assert (service.counts.inserted, service.counts.policy_versions) == (16, 3)

    batch = decode(service.sample_batch())
    assert batch.kind == BATCH_KIND and tokens.made == 1
    assert batch.arrays["action"].dtype == np.float32 and batch.arrays["action"].shape == (B, 2)
    np.testing.assert_array_equal(batch.arrays["action"][:, 1], -batch.arrays["obs"][:, 0])
    assert batch.arrays[WEIGHTS].shape == (B,) and batch.arrays[INDEX].dtype == np.int64
    assert "extra" not in batch.arrays and "priority" not in batch.arrays
    assert batch.meta["service"] == "svc" and batch.meta["split"] == 1
    assert batch.meta["sampled"] == B and batch.meta["size"] == 16

    index = batch.arrays[INDEX]
    update = {INDEX: index, GENERATION: batch.arrays[GENERATION], ABS_TD: np.full(B, 9.0)}
    service.on_update(decode(encode(PRIORITIES_KIND, update, {"service": "svc", "split": 1})))
    assert service.updates == 1 and len(tokens.applied) == 1 and tokens.applied[0][2] == 1
    np.testing.assert_allclose(service.store.replay.priorities(index), 9.0, rtol=1e-5)


def test_experience_without_the_agents_fields_is_counted_and_dropped():
    tokens = RecordingTokens()
    wrong = experience(np.arange(4, dtype=np.float32))
    del wrong.arrays["action"]
    service = service_with(tokens, [wrong])
    service.insert_once()
    assert len(service.store) == 0 and service.malformed == 1
    assert "action" in service.last_error and service.stats()["malformed"] == 1


def batch_message(action: np.ndarray, service: str = "s1", **counts: int) -> Message:
    arrays = {
        "obs": np.zeros((B, 3), np.float32),
        "next_obs": np.zeros((B, 3), np.float32),
        "action": action,
        "reward": np.zeros(B, np.float32),
        "discount": np.ones(B, np.float32),
        WEIGHTS: np.array([0.5, 1.0, 0.25, 0.5], np.float32),
        INDEX: np.arange(B, dtype=np.int64),
        GENERATION: np.zeros(B, np.int64),
    }
    meta = {"service": service, "split": B, "size": 40, "demos": 0}
    meta.update({**ServiceCounts().as_meta(), **counts})
    return decode(encode(BATCH_KIND, arrays, meta))


def dpg_schema(cfg: Any, env: Any) -> dict[str, tuple[str, tuple[int, ...]]]:
    return spec("dpg").message_schema(cfg, env)


def test_the_remote_store_checks_batches_against_the_agents_schema():
    vectors = batch_message(np.zeros((B, 1), np.float32))
    indices = batch_message(np.zeros(B, np.int64))  # an Ape-X batch: not this agent's
    store = RemoteStore(
        config(), ENV, FakeInbox([indices, vectors]), FakeOutbox(), schema=dpg_schema
    )
    assert store.take(0.4, 0.0) is None and store.rejected == 1
    assert "'action' is int64[4], expected float32[4, 1]" in store.last_error
    drawn = store.take(0.4, 0.0)
    assert drawn is not None and drawn.fields["action"].shape == (B, 1)
    assert set(drawn.fields) == {"obs", "next_obs", "action", "reward", "discount"}


class FakeRemoteStore:
    """Hands out one batch with the service's counter deltas, records priority updates."""

    def __init__(self, counts: ServiceCounts) -> None:
        self.pending = [Drawn({"obs": np.zeros((B, 3))}, np.array([0.5, 1, 0.25, 0.5]), "tok")]
        self.delta = counts
        self.updates: list[tuple[Any, np.ndarray]] = []
        self.rejected = 3

    def __len__(self) -> int:
        return 40

    def take(self, beta: float, timeout: float) -> Drawn | None:
        return self.pending.pop() if self.pending else None

    def counts(self) -> ServiceCounts:
        out, self.delta = self.delta, ServiceCounts()
        return out

    def update(self, token: Any, abs_td: np.ndarray) -> None:
        self.updates.append((token, abs_td))

    def load(self, path: Path) -> None:
        raise ConfigError("no snapshot here")


class Counters:
    inserted = sampled = env_steps = 0


def test_the_remote_feed_counts_what_the_service_counted_and_hands_batches_on():
    counts = ServiceCounts(inserted=64, env_steps=70, sampled=8, messages=4, policy_versions=10)
    store, counters = FakeRemoteStore(counts), Counters()
    feed = RemoteFeed(store, counters, weight_norm="buffer")
    got: list[Any] = []
    heard: list[tuple[int, int]] = []
    loops = feed.loops(None, got.append, lambda: 0.4, lambda m, v: heard.append((m, v)))
    assert set(loops) == {"prefetch"}  # the service inserts: no insert thread
    loops["prefetch"]()
    loops["prefetch"]()  # nothing more ready: nothing handed on, nothing counted
    assert len(got) == 1 and heard == [(4, 10)]
    assert (counters.inserted, counters.env_steps, counters.sampled) == (64, 70, 8)
    token, fields, weights = got[0]
    assert token == "tok" and weights.dtype == np.float32
    np.testing.assert_allclose(weights, [0.5, 1.0, 0.25, 0.5])  # as the service sampled them
    feed.update(token, np.ones(B))
    assert store.updates[0][0] == "tok" and len(feed) == 40 and feed.rejected == 3
    assert feed.notice() is None
    feed.last_batch -= SERVICE_WAIT_NOTICE_S + 1
    assert "no batch from the replay service" in feed.notice()
    assert feed.state() == {"replay_size": 40}


def test_the_remote_feed_normalises_weights_by_the_batch_max_when_asked(tmp_path: Path):
    store = FakeRemoteStore(ServiceCounts())
    store.pending[0].weights = np.array([0.2, 0.4, 0.1, 0.2])
    got: list[Any] = []
    feed = RemoteFeed(store, Counters(), weight_norm="batch")
    feed.prefetch_once(got.append, 0.4, lambda messages, versions: None)
    np.testing.assert_allclose(got[0][2], [0.5, 1.0, 0.25, 0.5])
    feed.load_state({}, tmp_path / "replay")  # no snapshot: nothing to do
    (tmp_path / "replay").mkdir()
    with pytest.raises(ConfigError, match="no snapshot"):
        feed.load_state({}, tmp_path / "replay")


def test_waiting_notice_starts_after_the_threshold():
    assert waiting_notice(SERVICE_WAIT_NOTICE_S - 0.5) is None
    assert "for 42 s" in waiting_notice(42.0)


@pytest.mark.parametrize("kind", ["prioritized", "uniform"])
def test_replay_store_draws_with_a_generation_token_and_takes_priorities(kind):
    cfg = config(f'replay.kind="{kind}"')
    store = ReplayStore(cfg.replay, FIELDS, seed=0)
    ids = np.arange(16, dtype=np.float32)
    arrays = experience(ids).arrays
    store.add({k: arrays[k] for k in FIELDS}, np.ones(16, np.float32))
    assert len(store) == 16 and store.num_demos == 0
    drawn = store.draw(B, 0.4)
    index, generation, split = plain_token_arrays(drawn.token)
    assert split == B and drawn.weights.dtype == np.float32
    np.testing.assert_array_equal(drawn.fields["obs"][:, 0], ids[index])
    store.update(drawn.token, np.full(B, 5.0))
    if kind == "prioritized":
        np.testing.assert_allclose(store.replay.priorities(index), 5.0, rtol=1e-5)


def test_every_ape_x_family_service_shares_the_role_and_the_message_kinds():
    apex, dpg = spec("apex").service, spec("dpg").service
    assert apex is not None and dpg is not None
    for service in (apex, dpg):
        assert service.role == "replay" and service.batch_kind == BATCH_KIND
        assert service.update_kinds == apex.update_kinds
    with pytest.raises(ConfigError, match="snapshot_replay"):
        dpg.check(config("run.snapshot_replay=true"))
