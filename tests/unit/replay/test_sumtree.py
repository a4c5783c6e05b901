"""SumTree against exact boundary cases and a naive numpy cumsum oracle."""

from __future__ import annotations

import numpy as np
import pytest

from rlfleet.errors import ReplayError
from rlfleet.replay import SumTree


def naive_find(leaves: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Leaf i with C_i <= v < C_i + p_i (p_i > 0); v >= total -> the last positive leaf."""
    cum = np.cumsum(leaves)
    out = np.searchsorted(cum, values, side="right")
    last_pos = np.flatnonzero(leaves > 0)[-1]
    return np.where(out >= len(leaves), last_pos, out)


def make(leaves: list[float]) -> SumTree:
    t = SumTree(len(leaves))
    t.set(np.arange(len(leaves)), np.asarray(leaves, dtype=np.float64))
    return t


def test_boundaries_are_half_open() -> None:
    t = make([1, 2, 3, 4])
    assert t.total == 10.0
    v = np.array([0.0, 0.999, 1.0, 2.999, 3.0, 5.999, 6.0, 9.999])
    assert t.find(v).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_total_and_beyond_land_on_last_slot() -> None:
    t = make([1, 2, 3, 4])
    assert t.find(np.array([10.0, 10.5, 1e9])).tolist() == [3, 3, 3]


def test_zero_leaves_never_found() -> None:
    leaves = [0.0, 1.0, 0.0, 0.0, 2.0, 0.0, 0.0]
    t = make(leaves)
    v = np.array([0.0, 0.5, 1.0, 2.999, 3.0, 100.0])
    assert t.find(v).tolist() == [1, 1, 4, 4, 4, 4]
    got = t.find(np.linspace(0, 3.0, 1001))
    assert set(got.tolist()) == {1, 4}


@pytest.mark.parametrize("capacity", [1, 7, 8, 9, 63, 64, 65, 513, 4097])
def test_last_slot_is_reachable_for_any_capacity(capacity: int) -> None:
    t = make([1.0] * capacity)
    rng = np.random.default_rng(capacity)
    got = t.sample(capacity, rng)
    # Equal leaves and one stratum per leaf: every slot exactly once, the last one included.
    assert sorted(got.tolist()) == list(range(capacity))
    assert t.find(np.array([capacity - 0.5]))[0] == capacity - 1


def test_integer_leaves_exact_against_oracle() -> None:
    rng = np.random.default_rng(1)
    for capacity in [1, 5, 8, 9, 64, 100, 1000]:
        leaves = rng.integers(0, 5, capacity).astype(np.float64)
        leaves[-1] = 3.0  # at least one positive leaf
        t = make(leaves.tolist())
        total = int(leaves.sum())
        # Every integer boundary and every midpoint: exact in float64.
        v = np.arange(0, total + 1, 0.5)
        np.testing.assert_array_equal(t.find(v), naive_find(leaves, v))


def test_random_updates_against_oracle() -> None:
    rng = np.random.default_rng(2)
    for capacity in [3, 8, 17, 64, 300, 5000]:
        t = SumTree(capacity)
        leaves = np.zeros(capacity)
        for _ in range(20):
            k = rng.integers(1, 2 * capacity)
            idx = rng.integers(0, capacity, k)  # with duplicates: the last one wins
            vals = rng.random(k) * rng.choice([0.0, 1.0, 100.0], k)
            t.set(idx, vals)
            leaves[idx] = vals  # numpy fancy assignment: the last duplicate wins too
            if leaves.sum() == 0:
                continue
            np.testing.assert_allclose(t.total, leaves.sum(), rtol=1e-12)
            np.testing.assert_array_equal(t.get(np.arange(capacity)), leaves)
            positive = leaves[leaves > 0]
            assert t.min == positive.min()
            v = rng.random(256) * leaves.sum()
            got = t.find(v)
            assert (leaves[got] > 0).all()
            cum = np.concatenate([[0.0], np.cumsum(leaves)])
            tol = 1e-9 * leaves.sum()
            assert (cum[got] - tol <= v).all() and (v < cum[got + 1] + tol).all()
            agree = (got == naive_find(leaves, v)).mean()
            assert agree > 0.99  # rounding may only move values sitting on a boundary


def test_min_ignores_zero_and_empty_leaves() -> None:
    t = SumTree(10)
    assert t.min == np.inf
    t.set(np.array([3, 4]), np.array([0.0, 2.5]))
    assert t.min == 2.5
    t.set(np.array([4]), np.array([0.0]))
    assert t.min == np.inf


def test_rebuild_is_bit_identical_to_updates() -> None:
    rng = np.random.default_rng(3)
    t = SumTree(1000)
    for _ in range(30):
        idx = rng.integers(0, 1000, 77)
        t.set(idx, rng.random(77))
    t2 = SumTree(1000)
    t2.load_leaves(t.leaves())
    np.testing.assert_array_equal(t._t, t2._t)
    np.testing.assert_array_equal(t._mn, t2._mn)


def test_stratified_sample_has_one_draw_per_segment() -> None:
    rng = np.random.default_rng(4)
    leaves = rng.random(200) + 0.01
    t = make(leaves.tolist())
    got = t.sample(16, np.random.default_rng(5))
    cum = np.concatenate([[0.0], np.cumsum(leaves)])
    seg = leaves.sum() / 16
    # Leaf j's interval must intersect stratum j.
    for j, i in enumerate(got):
        assert cum[i] < (j + 1) * seg and cum[i + 1] > j * seg


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.set(np.array([10]), np.array([1.0])),
        lambda t: t.set(np.array([-1]), np.array([1.0])),
        lambda t: t.set(np.array([1]), np.array([np.nan])),
        lambda t: t.set(np.array([1]), np.array([-1.0])),
        lambda t: t.set(np.array([1, 2]), np.array([1.0])),
        lambda t: t.set(np.array([1.0]), np.array([1.0])),
        lambda t: t.get(np.array([10])),
        lambda t: t.find(np.array([0.5])),  # empty tree: total 0
    ],
)
def test_bad_input(call) -> None:
    t = SumTree(10)
    with pytest.raises(ReplayError):
        call(t)
    assert t.total == 0.0  # nothing half-written


def test_bad_capacity() -> None:
    with pytest.raises(ReplayError, match="capacity"):
        SumTree(0)
