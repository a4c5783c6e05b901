"""PrioritizedReplay against closed forms: P(i) = p_i^a / sum, paper weights, FIFO, guards."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chisquare

from rlfleet.errors import ReplayError
from rlfleet.replay import FieldSpec, PrioritizedReplay

FIELDS = {
    "obs": FieldSpec(shape=(3,), dtype=np.float32),
    "action": FieldSpec(shape=(), dtype=np.int64),
    "reward": FieldSpec(shape=(), dtype=np.float32),
}


def batch(n: int, start: int = 0) -> dict[str, np.ndarray]:
    """Items tagged by a running id so tests can tell which item sits in which slot."""
    ids = np.arange(start, start + n)
    return {
        "obs": np.stack([ids, ids * 2, ids * 3], axis=1).astype(np.float32),
        "action": ids.astype(np.int64),
        "reward": (ids * 0.5).astype(np.float32),
    }


def test_sampled_fields_match_stored_items() -> None:
    rb = PrioritizedReplay(100, FIELDS, seed=1)
    rb.add(batch(60), np.random.default_rng(0).random(60))
    s = rb.sample(32, beta=0.4)
    ids = s.fields["action"]
    np.testing.assert_array_equal(ids, s.indices)  # slot i holds item i (no reserved region)
    np.testing.assert_array_equal(s.fields["obs"], batch(60)["obs"][ids])
    np.testing.assert_array_equal(s.fields["reward"], batch(60)["reward"][ids])
    assert s.weights.dtype == np.float32 and s.indices.dtype == np.int64


def test_sampling_frequencies_match_p_alpha() -> None:
    rng = np.random.default_rng(7)
    n, alpha, eps = 40, 0.6, 1e-6
    raw = rng.random(n) * 5
    rb = PrioritizedReplay(n, FIELDS, alpha=alpha, priority_eps=eps, seed=3)
    rb.add(batch(n), raw)
    counts = np.zeros(n)
    draws = 0
    for _ in range(3000):
        s = rb.sample(32, beta=0.4)
        counts += np.bincount(s.indices, minlength=n)
        draws += 32
    p = (raw + eps) ** alpha
    expected = p / p.sum() * draws
    assert chisquare(counts, expected).pvalue > 1e-3
    # The test can fail: without alpha the same counts are far off.
    wrong = (raw + eps) / (raw + eps).sum() * draws
    assert chisquare(counts, wrong).pvalue < 1e-6


def test_weights_match_closed_form_over_whole_buffer() -> None:
    rng = np.random.default_rng(8)
    n, alpha, beta, eps = 50, 0.7, 0.4, 1e-3
    raw = rng.random(n) * 3
    rb = PrioritizedReplay(80, FIELDS, alpha=alpha, priority_eps=eps, seed=0)
    rb.add(batch(n), raw)
    s = rb.sample(48, beta=beta)
    p = (raw + eps) ** alpha
    P = p / p.sum()
    w_all = (n * P) ** (-beta)  # N = items stored (50), not the capacity (80)
    expected = w_all[s.indices] / w_all.max()
    np.testing.assert_allclose(s.weights, expected, rtol=1e-5)
    assert s.weights.max() <= 1.0


def test_new_items_get_max_priority_seen() -> None:
    rb = PrioritizedReplay(20, FIELDS, alpha=0.5, priority_eps=0.01)
    idx = rb.add(batch(2))
    np.testing.assert_allclose(rb.priorities(idx), 1.0)  # nothing seen yet: 1.0
    rb.add(batch(2, 2), np.array([0.5, 3.0]))
    assert rb.max_priority == pytest.approx(3.01)
    idx = rb.add(batch(3, 4))
    np.testing.assert_allclose(rb.priorities(idx), 3.01**0.5)
    s = rb.sample(4, 0.5)
    rb.update_priorities(s.indices, np.full(4, 10.0), s.generations)
    assert rb.max_priority == pytest.approx(10.01)
    idx = rb.add(batch(1, 7))
    np.testing.assert_allclose(rb.priorities(idx), 10.01**0.5)


def test_update_sets_transformed_priority_last_duplicate_wins() -> None:
    rb = PrioritizedReplay(10, FIELDS, alpha=0.6, priority_eps=0.1)
    rb.add(batch(10))
    gens = np.ones(3, dtype=np.int64)
    n = rb.update_priorities(np.array([2, 5, 2]), np.array([1.0, 2.0, 4.0]), gens)
    assert n == 3
    np.testing.assert_allclose(rb.priorities(np.array([2, 5])), [4.1**0.6, 2.1**0.6])


def test_stale_update_guard_ignores_overwritten_slots() -> None:
    rb = PrioritizedReplay(10, FIELDS, alpha=1.0, priority_eps=1e-6, seed=0)
    rb.add(batch(10), np.ones(10))
    s = rb.sample(10, beta=0.4)
    rb.add(batch(4, 100), np.full(4, 7.0))  # overwrites slots 0..3
    fresh = s.indices >= 4
    n = rb.update_priorities(s.indices, np.full(10, 50.0), s.generations)
    assert n == int(fresh.sum())
    np.testing.assert_allclose(rb.priorities(np.arange(4)), 7.0 + 1e-6)
    kept = np.unique(s.indices[fresh])
    np.testing.assert_allclose(rb.priorities(kept), 50.0 + 1e-6)


def test_fifo_eviction_and_wraparound() -> None:
    rb = PrioritizedReplay(8, FIELDS)
    rb.add(batch(5))
    idx = rb.add(batch(5, 5))
    assert idx.tolist() == [5, 6, 7, 0, 1]
    assert len(rb) == 8
    s = rb.sample(8, 0.0)
    expect = {0: 8, 1: 9, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7}
    for i, a in zip(s.indices, s.fields["action"], strict=True):
        assert expect[int(i)] == a


def test_last_slot_is_sampled() -> None:
    rb = PrioritizedReplay(9, FIELDS, seed=2)
    rb.add(batch(9))
    seen = set()
    for _ in range(20):
        seen.update(rb.sample(9, 0.4).indices.tolist())
    assert seen == set(range(9))


def test_reserved_region_never_evicted_and_own_eps() -> None:
    rb = PrioritizedReplay(
        20, FIELDS, reserved=5, alpha=1.0, priority_eps=0.001, reserved_priority_eps=1.0
    )
    idx = rb.add_reserved(batch(3, 1000), np.zeros(3))
    assert idx.tolist() == [0, 1, 2] and rb.num_reserved == 3
    np.testing.assert_allclose(rb.priorities(idx), 1.0)  # demo bonus eps
    for k in range(10):
        rb.add(batch(7, 10 * k), np.zeros(7))
    assert len(rb) == 3 + 15
    s = rb.sample(18, 0.4)
    assert set(s.indices.tolist()) >= {0, 1, 2}
    np.testing.assert_array_equal(rb.get(np.arange(3))["action"], [1000, 1001, 1002])
    assert ((s.indices < 3) | (s.indices >= 5)).all()  # unfilled reserved slots never sampled
    rb.update_priorities(np.array([0, 7]), np.array([0.0, 0.0]), rb.generations(np.array([0, 7])))
    np.testing.assert_allclose(rb.priorities(np.array([0, 7])), [1.0, 0.001])
    rb.add_reserved(batch(2, 2000))
    with pytest.raises(ReplayError, match="reserved region would overflow"):
        rb.add_reserved(batch(1))
    assert rb.num_reserved == 5


def test_snapshot_free_determinism_same_seed_same_samples() -> None:
    a = PrioritizedReplay(50, FIELDS, seed=9)
    b = PrioritizedReplay(50, FIELDS, seed=9)
    for rb in (a, b):
        rb.add(batch(30), np.arange(30.0))
    sa, sb = a.sample(16, 0.5), b.sample(16, 0.5)
    np.testing.assert_array_equal(sa.indices, sb.indices)


# -- bad input ------------------------------------------------------------------------------


def assert_untouched(rb: PrioritizedReplay, before_len: int, before_total: float) -> None:
    assert len(rb) == before_len
    assert rb.tree.total == before_total
    nxt = rb.add(batch(1, 999))
    assert nxt[0] == before_len % rb.capacity  # the cursor did not move either


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda b: b.pop("reward"), "missing \\['reward'\\]"),
        (lambda b: b.update(extra=np.zeros(4)), "unknown \\['extra'\\]"),
        (lambda b: b.update(obs=np.zeros((4, 2), np.float32)), "field 'obs': got shape"),
        (lambda b: b.update(action=np.zeros(4, np.float64)), "field 'action': dtype float64"),
        (lambda b: b.update(action=np.zeros(4, np.uint64)), "field 'action': dtype uint64"),
        (lambda b: b.update(reward=np.zeros(3, np.float32)), "has 3 items but the batch has 4"),
    ],
)
def test_bad_batches_write_nothing(mutate, match) -> None:
    rb = PrioritizedReplay(10, FIELDS)
    rb.add(batch(3))
    total = rb.tree.total
    bad = batch(4, 10)
    mutate(bad)
    with pytest.raises(ReplayError, match=match) as err:
        rb.add(bad)
    assert any(w in str(err.value) for w in ("valid", "expected", "pass", "same length"))
    assert_untouched(rb, 3, total)


def test_safe_casts_are_accepted() -> None:
    rb = PrioritizedReplay(10, FIELDS)
    b = batch(4)
    b["action"] = b["action"].astype(np.int32)
    b["obs"] = b["obs"].astype(np.float64)  # float -> float: accepted (documented)
    rb.add(b)
    stored = rb.get(np.arange(4))["action"]
    assert stored.dtype == np.int64
    np.testing.assert_array_equal(stored, [0, 1, 2, 3])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, -0.5])
def test_bad_priorities_write_nothing(bad: float) -> None:
    rb = PrioritizedReplay(10, FIELDS)
    rb.add(batch(3))
    total = rb.tree.total
    with pytest.raises(ReplayError, match=f"priority {bad} at position 2"):
        rb.add(batch(4), np.array([1.0, 1.0, bad, 1.0]))
    assert_untouched(rb, 3, total)


def test_priorities_wrong_shape() -> None:
    rb = PrioritizedReplay(10, FIELDS)
    with pytest.raises(ReplayError, match="priorities must have shape \\(4,\\)"):
        rb.add(batch(4), np.ones(3))


def test_batch_larger_than_capacity() -> None:
    rb = PrioritizedReplay(10, FIELDS, reserved=2)
    with pytest.raises(
        ReplayError, match="batch of 9 items does not fit: the region holds at most 8"
    ):
        rb.add(batch(9))
    assert len(rb) == 0


def test_sample_errors() -> None:
    rb = PrioritizedReplay(10, FIELDS)
    with pytest.raises(ReplayError, match="empty buffer"):
        rb.sample(1, 0.4)
    rb.add(batch(3))
    with pytest.raises(ReplayError, match="cannot sample 4 items: the buffer holds 3; valid: 1..3"):
        rb.sample(4, 0.4)
    for beta in (-0.1, 1.5, float("nan")):
        with pytest.raises(ReplayError, match="beta"):
            rb.sample(2, beta)
    for b in (0, -1, 2.0):
        with pytest.raises(ReplayError, match="batch_size"):
            rb.sample(b, 0.4)


def test_update_errors_write_nothing() -> None:
    rb = PrioritizedReplay(10, FIELDS)
    rb.add(batch(5))
    before = rb.tree.leaves()
    g = np.ones(2, dtype=np.int64)
    with pytest.raises(ReplayError, match="index 10 at position 1 out of range; valid: 0..9"):
        rb.update_priorities(np.array([0, 10]), np.ones(2), g)
    with pytest.raises(ReplayError, match="index -1 at position 1 out of range"):
        rb.update_priorities(np.array([0, -1]), np.ones(2), g)
    with pytest.raises(ReplayError, match="index 7 at position 1 is an empty slot"):
        rb.update_priorities(np.array([0, 7]), np.ones(2), g)
    with pytest.raises(ReplayError, match="priority nan at position 1"):
        rb.update_priorities(np.array([0, 1]), np.array([1.0, np.nan]), g)
    with pytest.raises(ReplayError, match="priority -1.0 at position 0"):
        rb.update_priorities(np.array([0, 1]), np.array([-1.0, 1.0]), g)
    with pytest.raises(ReplayError, match="same 1-d shape"):
        rb.update_priorities(np.array([0, 1]), np.ones(3), g)
    with pytest.raises(ReplayError, match="integer"):
        rb.update_priorities(np.array([0.0, 1.0]), np.ones(2), g)
    np.testing.assert_array_equal(rb.tree.leaves(), before)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"capacity": 0},
        {"capacity": 10, "reserved": 10},
        {"capacity": 10, "alpha": -1},
        {"capacity": 10, "priority_eps": 0.0},
        {"capacity": 10, "reserved_priority_eps": -1.0},
    ],
)
def test_bad_construction(kwargs) -> None:
    with pytest.raises(ReplayError):
        PrioritizedReplay(fields=FIELDS, **kwargs)


def test_empty_batch_is_a_no_op() -> None:
    rb = PrioritizedReplay(10, FIELDS)
    assert rb.add(batch(0)).size == 0
    assert len(rb) == 0
