"""CTC collapsing, greedy and prefix-beam decoding, the CTC loss and CER against naive
references that enumerate every path of tiny inputs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rlfleet.math.ctc import beam_decode, char_error_rate, collapse, greedy_decode, prefix_beam

pytestmark = pytest.mark.unit


def naive_collapse(path):
    out, prev = [], None
    for c in path:
        if c != prev and c != 0:
            out.append(c)
        prev = c
    return tuple(out)


def naive_string_probs(logp):
    """Every string's total probability: a sum over all C^T paths."""
    t, c = logp.shape
    probs: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(c), repeat=t):
        p = float(np.exp(sum(logp[i, k] for i, k in enumerate(path))))
        key = naive_collapse(path)
        probs[key] = probs.get(key, 0.0) + p
    return probs


def random_logp(rng, t, c):
    x = rng.normal(size=(t, c)) * 2
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def test_collapse_matches_a_naive_loop():
    rng = np.random.default_rng(0)
    paths = rng.integers(0, 4, size=(50, 9))
    lengths = rng.integers(0, 10, size=50)
    out, n = collapse(paths, lengths)
    for i in range(50):
        want = naive_collapse(paths[i, : lengths[i]])
        assert tuple(out[i, : n[i]]) == want
        assert (out[i, n[i] :] == 0).all()


def test_greedy_is_the_collapsed_best_path():
    rng = np.random.default_rng(1)
    for _ in range(20):
        logp = random_logp(rng, 5, 3)
        best = max(
            itertools.product(range(3), repeat=5),
            key=lambda p: sum(logp[i, k] for i, k in enumerate(p)),
        )
        out, n = greedy_decode(logp[None], np.array([5]))
        assert tuple(out[0, : n[0]]) == naive_collapse(best)


def test_wide_prefix_beam_finds_the_most_probable_string():
    rng = np.random.default_rng(2)
    for _ in range(15):
        logp = random_logp(rng, 5, 3)
        probs = naive_string_probs(logp)
        want = max(probs, key=probs.get)
        got, score = prefix_beam(logp, width=1000)
        assert got == want
        assert score == pytest.approx(np.log(probs[want]), abs=1e-9)


def test_narrow_beam_never_worse_than_greedy_here_and_batched_equals_single():
    rng = np.random.default_rng(3)
    logp = np.stack([random_logp(rng, 6, 4) for _ in range(4)])
    lengths = np.array([6, 5, 3, 1])
    out, n = beam_decode(logp, lengths, width=3)
    for i in range(4):
        single, _ = prefix_beam(logp[i, : lengths[i]], 3)
        assert tuple(out[i, : n[i]]) == single


def test_torch_ctc_loss_is_minus_log_of_the_naive_string_probability():
    rng = np.random.default_rng(4)
    logp = random_logp(rng, 5, 3)
    probs = naive_string_probs(logp)
    target = (1, 2)
    loss = F.ctc_loss(
        torch.from_numpy(logp)[:, None, :],
        torch.tensor([target]),
        torch.tensor([5]),
        torch.tensor([2]),
        reduction="sum",
    )
    assert float(loss) == pytest.approx(-np.log(probs[target]), rel=1e-9)


def naive_levenshtein(a, b):
    d = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, y in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (x != y))
    return d[len(b)]


def test_cer_against_naive_edit_distance():
    rng = np.random.default_rng(5)
    hyp = rng.integers(1, 5, size=(40, 7))
    ref = rng.integers(1, 5, size=(40, 6))
    hl = rng.integers(0, 8, size=40)
    rl = rng.integers(0, 7, size=40)
    cer = char_error_rate(hyp, hl, ref, rl)
    for i in range(40):
        dist = naive_levenshtein(list(hyp[i, : hl[i]]), list(ref[i, : rl[i]]))
        assert cer[i] == pytest.approx(dist / max(rl[i], 1))
