"""IMPALA's wire messages: a real unroll passes the learner's boundary checks, malformed ones
are named (never crashed on)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from fakes import impala_unrolls

from rlfleet.agents.impala.messages import encode_unroll, unroll_problem
from rlfleet.transport.codec import Message, decode

T, K = 5, 3


def _wire(unroll: dict[str, np.ndarray]) -> Message:
    return decode(encode_unroll(unroll, 0))


def _unrolls(n: int, version: int = 3) -> list[dict[str, np.ndarray]]:
    return impala_unrolls(n, T, K, version)


def test_a_real_unroll_passes_the_learners_checks():
    (unroll,) = _unrolls(1)
    message = _wire(unroll)
    assert message.kind == "unroll"
    assert message.meta == {"actor": 0, "policy_version": 3, "env_steps": T * K}
    assert unroll["truncated"].any(), "the fixture should include truncations"
    assert unroll_problem(message.arrays, T, (4,), np.dtype(np.float32), 2) == ""


def _corrupt(arrays: dict[str, np.ndarray], key: str, value) -> dict[str, np.ndarray]:
    return {**arrays, key: value}


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda a: {k: v for k, v in a.items() if k != "reward"}, "missing arrays"),
        (lambda a: _corrupt(a, "obs", a["obs"].astype(np.float64)), "obs is float64"),
        (lambda a: _corrupt(a, "obs", a["obs"][:-1]), "expected \\[6, K"),
        (lambda a: _corrupt(a, "action", a["action"].astype(np.int32)), "action is int32"),
        (lambda a: _corrupt(a, "behaviour_logits", a["behaviour_logits"][..., :1]), "logits"),
        (lambda a: _corrupt(a, "reward", np.full_like(a["reward"], np.nan)), "non-finite"),
        (lambda a: _corrupt(a, "discount", a["discount"] + 2), "outside \\[0, 1\\]"),
        (lambda a: _corrupt(a, "action", a["action"] + 2), "actions outside"),
        (lambda a: _corrupt(a, "policy_version", np.zeros((2,), np.int64)), "policy_version"),
        (
            lambda a: _corrupt(a, "final_obs_index", a["final_obs_index"] + np.array([T, 0])),
            "points outside",
        ),
        (
            lambda a: _corrupt(a, "truncated", np.zeros_like(a["truncated"])),
            "distinct truncated steps",
        ),
        (lambda a: _corrupt(a, "done", np.zeros_like(a["done"])), "not marked done"),
    ],
)
def test_malformed_unrolls_are_named_not_crashed_on(mutate, match):
    arrays = dict(_wire(_unrolls(1)[0]).arrays)
    problem = unroll_problem(mutate(arrays), T, (4,), np.dtype(np.float32), 2)
    assert re.search(match, problem), problem
