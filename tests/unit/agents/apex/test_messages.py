"""Ape-X experience messages: the schema and value checks both transports apply, so a hostile
or buggy actor's message is counted and dropped instead of ending the learner."""

from __future__ import annotations

import re
from multiprocessing import Pipe

import numpy as np
import pytest

from rlfleet.agents.apex.learner import ApexLearner
from rlfleet.agents.apex.messages import message_check, message_schema
from rlfleet.cli.presets import build_config
from rlfleet.envs.spec import probe_env
from rlfleet.transport.codec import decode, encode
from rlfleet.transport.local import PipeInbox

ENV = probe_env("CartPole-v1")
CONFIG = build_config("cartpole", ["replay.capacity=1000", "replay.learning_starts=10"])


def experience(n: int = 8, **change) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        "obs": rng.normal(size=(n, 4)).astype(np.float32),
        "next_obs": rng.normal(size=(n, 4)).astype(np.float32),
        "action": rng.integers(0, 2, n).astype(np.int64),
        "reward": np.ones(n, np.float32),
        "discount": np.full(n, 0.97, np.float32),
        "priority": np.ones(n, np.float32),
    }
    arrays.update(change)
    return arrays


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"priority": np.full(8, np.nan, np.float32)}, "priorities must be finite and >= 0"),
        ({"priority": np.full(8, -1.0, np.float32)}, "priorities must be finite and >= 0"),
        ({"action": np.full(8, 2, np.int64)}, "actions outside 0..1"),
        ({"reward": np.full(8, np.inf, np.float32)}, "non-finite reward"),
        ({"obs": np.full((8, 4), np.nan, np.float32)}, "non-finite obs"),
        ({"discount": np.full(8, 1.5, np.float32)}, r"discount outside \[0, 1\]"),
    ],
)
def test_bad_values_are_named(change, problem):
    message = decode(encode("experience", experience(**change), {"env_steps": 8}))
    assert re.search(problem, message_check(CONFIG, ENV)(message))


def test_a_batch_larger_than_the_replay_is_refused():
    message = decode(encode("experience", experience(n=1001), {}))
    assert "1001 transitions exceed replay.capacity 1000" in message_check(CONFIG, ENV)(message)


def test_hostile_messages_are_dropped_at_the_inbox_and_the_learner_keeps_inserting():
    inbox = PipeInbox(
        kinds={"experience"},
        expect=message_schema(CONFIG, ENV),
        check=message_check(CONFIG, ENV),
    )
    reader, writer = Pipe(duplex=False)
    inbox.add(reader)
    hostile = [
        encode("experience", experience(priority=np.full(8, np.nan, np.float32)), {}),
        encode("experience", experience(), {"env_steps": "many"}),
        encode("experience", experience(action=np.full(8, 9, np.int64)), {}),
        encode("unroll", experience(), {}),
        b"not a message at all",
    ]
    for payload in [*hostile, encode("experience", experience(), {"env_steps": 8})]:
        writer.send_bytes(payload)
    learner = ApexLearner(CONFIG, ENV, seed=0)
    for _ in range(3):
        learner.insert_once(inbox)
    assert len(learner.store) == 8 and learner.counters.env_steps == 8
    by_reason = inbox.gate.rejected_by_reason
    assert by_reason == {"codec": 1, "kind": 1, "meta": 1, "schema": 0, "content": 2}
    assert inbox.rejected == 5
