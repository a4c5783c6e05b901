"""Levenshtein edit distance between batches of token sequences, and the sequence metrics built
on it (phoneme / word error rates, negative normalised edit distance rewards).

Sequences are padded int arrays ``[B, T]`` with their lengths ``[B]``. The dynamic programme
runs over the positions of the two sequences (``T_a * T_b`` numpy steps) and is vectorised over
the batch, so scoring a thousand outputs costs about as much as scoring one.
"""

from __future__ import annotations

import numpy as np

__all__ = ["edit_distance", "min_edit_distance"]


def edit_distance(a: np.ndarray, a_len: np.ndarray, b: np.ndarray, b_len: np.ndarray) -> np.ndarray:
    """Levenshtein distance (unit insert/delete/substitute) between rows ``a[i, :a_len[i]]`` and
    ``b[i, :b_len[i]]``; int64 ``[B]``. Tokens beyond a row's length are ignored."""
    a, b = np.asarray(a), np.asarray(b)
    a_len = np.asarray(a_len, np.int64)
    b_len = np.asarray(b_len, np.int64)
    batch = a.shape[0]
    if b.shape[0] != batch or a_len.shape != (batch,) or b_len.shape != (batch,):
        raise ValueError(
            f"edit_distance needs matching batches: a {a.shape}, b {b.shape}, "
            f"a_len {a_len.shape}, b_len {b_len.shape}"
        )
    ta, tb = int(a_len.max(initial=0)), int(b_len.max(initial=0))
    rows = np.arange(batch)
    # prev[:, j] = distance(a[:i], b[:j]); row i = 0 is j insertions
    prev = np.broadcast_to(np.arange(tb + 1, dtype=np.int64), (batch, tb + 1)).copy()
    out = np.where(a_len == 0, b_len, 0).astype(np.int64)
    for i in range(1, ta + 1):
        cur = np.empty_like(prev)
        cur[:, 0] = i
        sub = prev[:, :-1] + (a[:, i - 1 : i] != b[:, :tb])
        dele = prev[:, 1:] + 1
        best = np.minimum(sub, dele)
        # insertions chain along j: cur[j] = min(best[j], cur[j-1] + 1), i.e. a running
        # minimum of best[k] + (j - k), done without a Python loop over j
        offs = np.arange(1, tb + 1, dtype=np.int64)
        cand = np.concatenate([np.full((batch, 1), i, np.int64), best], axis=1) - np.concatenate(
            [[0], offs]
        )
        cur = np.minimum.accumulate(cand, axis=1) + np.concatenate([[0], offs])
        done = a_len == i
        if done.any():
            out[done] = cur[rows[done], b_len[done]]
        prev = cur
    return out


def min_edit_distance(
    hyp: np.ndarray,
    hyp_len: np.ndarray,
    refs: np.ndarray,
    ref_len: np.ndarray,
    ref_owner: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """For each hypothesis, the distance to its closest reference and that reference's length.

    ``refs [R, T]`` / ``ref_len [R]`` hold every reference; ``ref_owner [R]`` is the hypothesis
    row each belongs to (a word with several pronunciations has several rows). Ties keep the
    shorter reference (the smaller error rate). Returns int64 ``([B], [B])``."""
    ref_owner = np.asarray(ref_owner, np.int64)
    dist = edit_distance(hyp[ref_owner], np.asarray(hyp_len)[ref_owner], refs, ref_len)
    batch = hyp.shape[0]
    # lexicographic min of (distance, length) per owner: one sort, first row of each owner
    order = np.lexsort((ref_len, dist, ref_owner))
    first = np.ones(order.size, bool)
    first[1:] = ref_owner[order][1:] != ref_owner[order][:-1]
    pick = order[first]
    best = np.full(batch, -1, np.int64)
    best_len = np.zeros(batch, np.int64)
    best[ref_owner[pick]] = dist[pick]
    best_len[ref_owner[pick]] = np.asarray(ref_len)[pick]
    if (best < 0).any():
        raise ValueError(f"hypotheses without a reference: rows {np.flatnonzero(best < 0)[:5]}")
    return best, best_len
