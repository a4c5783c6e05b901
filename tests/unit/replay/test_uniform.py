"""UniformReplay: uniform frequencies, unit weights, reserved mapping, validated no-op update."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chisquare

from rlfleet.errors import ReplayError
from rlfleet.replay import FieldSpec, UniformReplay

FIELDS = {"x": FieldSpec((2,), np.float32), "a": FieldSpec((), np.int64)}


def batch(n: int, start: int = 0) -> dict[str, np.ndarray]:
    ids = np.arange(start, start + n)
    return {"x": np.stack([ids, -ids], 1).astype(np.float32), "a": ids}


def test_uniform_frequencies_over_reserved_and_ring() -> None:
    rb = UniformReplay(30, FIELDS, seed=1, reserved=10)
    rb.add_reserved(batch(4, 100))
    for k in range(5):
        rb.add(batch(10, 10 * k))  # ring of 20 wraps: keeps items 30..49
    assert len(rb) == 24
    counts = np.zeros(30)
    for _ in range(2000):
        s = rb.sample(24)
        counts += np.bincount(s.indices, minlength=30)
    stored = np.r_[0:4, 10:30]
    assert counts[4:10].sum() == 0  # unfilled reserved slots never drawn
    assert chisquare(counts[stored]).pvalue > 1e-3
    s = rb.sample(24)
    np.testing.assert_array_equal(s.weights, np.ones(24, np.float32))
    ids = s.fields["a"]
    assert set(ids.tolist()) <= set(range(100, 104)) | set(range(30, 50))
    np.testing.assert_array_equal(s.fields["x"][:, 0], ids.astype(np.float32))


def test_update_is_validated_no_op() -> None:
    rb = UniformReplay(10, FIELDS)
    rb.add(batch(5))
    s = rb.sample(5)
    assert rb.update_priorities(s.indices, np.ones(5), s.generations) == 0
    with pytest.raises(ReplayError, match="out of range"):
        rb.update_priorities(np.array([11]), np.ones(1), np.ones(1, np.int64))
    with pytest.raises(ReplayError, match="priority nan"):
        rb.update_priorities(np.array([1]), np.array([np.nan]), np.ones(1, np.int64))
    with pytest.raises(ReplayError, match="empty slot"):
        rb.update_priorities(np.array([7]), np.ones(1), np.ones(1, np.int64))


def test_generations_track_rewrites() -> None:
    rb = UniformReplay(4, FIELDS)
    rb.add(batch(4))
    rb.add(batch(2, 10))
    np.testing.assert_array_equal(rb.generations(np.arange(4)), [2, 2, 1, 1])


def test_bad_input() -> None:
    rb = UniformReplay(10, FIELDS)
    with pytest.raises(ReplayError, match="empty buffer"):
        rb.sample(1)
    with pytest.raises(ReplayError, match="missing \\['a'\\]"):
        rb.add({"x": np.zeros((1, 2), np.float32)})
    with pytest.raises(ReplayError, match="priority -1.0"):
        rb.add(batch(2), np.array([1.0, -1.0]))
    with pytest.raises(ReplayError, match="beta"):
        rb.add(batch(2)) is None or rb.sample(1, beta=2.0)
    assert len(rb) == 2
