"""Connectionist temporal classification (Graves et al., 2006): collapsing label paths, greedy
and prefix-beam decoding, and the character error rate.

A recognizer emits, for each of T image columns, a distribution over C classes: class 0 is the
blank, classes 1..C-1 are characters. A *path* picks one class per column; it *collapses* to a
label string by merging runs of the same class and then dropping blanks (``-aa-b-`` -> ``ab``).
The probability of a string is the sum over the paths that collapse to it.

Batched arrays: paths ``[B, T]`` int with lengths ``[B]``; log-probabilities ``[B, T, C]``.
"""

from __future__ import annotations

import numpy as np

from rlfleet.math.edit_distance import edit_distance

__all__ = ["BLANK", "beam_decode", "char_error_rate", "collapse", "greedy_decode", "prefix_beam"]

#: The blank class id.
BLANK = 0


def collapse(paths: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels ``[B, T]`` (left-aligned, 0 after) and their lengths ``[B]`` of the paths
    ``paths[i, :lengths[i]]``: runs merged, blanks removed. No Python loop over the batch."""
    paths = np.asarray(paths)
    lengths = np.asarray(lengths, np.int64)
    b, t = paths.shape
    prev = np.concatenate([np.full((b, 1), -1, paths.dtype), paths[:, :-1]], axis=1)
    keep = (paths != BLANK) & (paths != prev) & (np.arange(t)[None, :] < lengths[:, None])
    out_len = keep.sum(axis=1).astype(np.int64)
    out = np.zeros((b, t), paths.dtype)
    rows, cols = np.nonzero(keep)
    # position of each kept label inside its row: its rank among the row's kept labels
    pos = np.cumsum(keep, axis=1)[rows, cols] - 1
    out[rows, pos] = paths[rows, cols]
    return out, out_len


def greedy_decode(log_probs: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best-path decoding: the most likely class per column, collapsed."""
    return collapse(np.asarray(log_probs).argmax(axis=2), lengths)


def _logsumexp(a: float, b: float) -> float:
    if a == -np.inf:
        return b
    if b == -np.inf:
        return a
    m = max(a, b)
    return m + float(np.log(np.exp(a - m) + np.exp(b - m)))


def prefix_beam(log_probs: np.ndarray, width: int) -> tuple[tuple[int, ...], float]:
    """CTC prefix beam search over one sequence ``log_probs [T, C]``: the label string with the
    highest (beam-approximated) total probability and its log-probability. Each prefix keeps two
    scores, ending in blank and ending in its last label, so paths that collapse to the same
    string are summed. With a width of at least the number of distinct prefixes it is exact."""
    neg = -np.inf
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, neg)}  # (p_blank, p_label)
    for row in np.asarray(log_probs, np.float64):
        nxt: dict[tuple[int, ...], list[float]] = {}

        def add(prefix: tuple[int, ...], blank: float, label: float, into: dict = nxt) -> None:
            cur = into.setdefault(prefix, [neg, neg])
            cur[0] = _logsumexp(cur[0], blank)
            cur[1] = _logsumexp(cur[1], label)

        for prefix, (pb, pl) in beams.items():
            total = _logsumexp(pb, pl)
            add(prefix, total + row[BLANK], neg)  # a blank keeps the prefix
            last = prefix[-1] if prefix else None
            for c in range(1, row.size):
                p = row[c]
                if c == last:
                    add(prefix, neg, pl + p)  # repeat without a blank between: merged
                    add(prefix + (c,), neg, pb + p)  # after a blank: a new label
                else:
                    add(prefix + (c,), neg, total + p)
        ranked = sorted(nxt.items(), key=lambda kv: -_logsumexp(*kv[1]))
        beams = {k: (v[0], v[1]) for k, v in ranked[:width]}
    best, (pb, pl) = max(beams.items(), key=lambda kv: _logsumexp(*kv[1]))
    return best, _logsumexp(pb, pl)


def beam_decode(
    log_probs: np.ndarray, lengths: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Prefix beam search of each sequence (evaluation only: a Python loop per sequence)."""
    log_probs = np.asarray(log_probs)
    b, t, _ = log_probs.shape
    out = np.zeros((b, t), np.int64)
    out_len = np.zeros(b, np.int64)
    for i in range(b):
        labels, _ = prefix_beam(log_probs[i, : int(lengths[i])], width)
        out[i, : len(labels)] = labels
        out_len[i] = len(labels)
    return out, out_len


def char_error_rate(
    hyp: np.ndarray, hyp_len: np.ndarray, ref: np.ndarray, ref_len: np.ndarray
) -> np.ndarray:
    """Per-row character error rate: edit distance over the reference length (float64 ``[B]``;
    an empty reference gives the hypothesis length). The corpus CER is
    ``sum(distance) / sum(ref_len)``, i.e. the ``ref_len``-weighted mean of these."""
    dist = edit_distance(hyp, hyp_len, ref, ref_len).astype(np.float64)
    return dist / np.maximum(np.asarray(ref_len, np.float64), 1.0)
