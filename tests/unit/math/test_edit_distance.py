"""Batched edit distance and closest-reference search against a naive dynamic programme."""

from __future__ import annotations

import numpy as np
import pytest

from rlfleet.math.edit_distance import edit_distance, min_edit_distance

pytestmark = pytest.mark.unit


def naive(a: list[int], b: list[int]) -> int:
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(
                d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])
            )
    return d[-1][-1]


def test_matches_naive_dp_on_random_padded_batches():
    rng = np.random.default_rng(0)
    n = 400
    a = rng.integers(0, 4, (n, 9))
    b = rng.integers(0, 4, (n, 7))
    a_len, b_len = rng.integers(0, 10, n), rng.integers(0, 8, n)
    got = edit_distance(a, a_len, b, b_len)
    want = [naive(list(a[i, : a_len[i]]), list(b[i, : b_len[i]])) for i in range(n)]
    assert got.tolist() == want


def test_known_values():
    a = np.array([[1, 2, 3, 0], [1, 2, 3, 4]])
    b = np.array([[1, 3, 0], [4, 3, 2]])
    assert edit_distance(a, [3, 4], b, [2, 3]).tolist() == [1, 3]


def test_closest_reference_is_chosen_with_ties_to_the_shorter():
    hyp = np.array([[1, 2, 3], [5, 5, 0]])
    refs = np.array([[1, 2, 4, 4], [1, 2, 3, 0], [5, 0, 0, 0], [5, 5, 5, 5], [6, 6, 6, 0]])
    ref_len = np.array([4, 3, 1, 4, 3])
    owner = np.array([0, 0, 1, 1, 1])
    dist, length = min_edit_distance(hyp, np.array([3, 2]), refs, ref_len, owner)
    assert dist.tolist() == [0, 1] and length.tolist() == [3, 1]


def test_mismatched_batches_are_refused():
    with pytest.raises(ValueError, match="matching batches"):
        edit_distance(np.zeros((2, 3)), [1, 1], np.zeros((3, 3)), [1, 1, 1])
