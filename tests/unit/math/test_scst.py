"""SCST advantages and loss against naive per-sample loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlfleet.errors import ConfigError
from rlfleet.math.scst import masked_entropy, scst_advantages, scst_loss

pytestmark = pytest.mark.unit


def test_advantages_against_naive_loops():
    rng = np.random.default_rng(1)
    r = rng.normal(size=(5, 4))
    g = rng.normal(size=5)
    greedy = scst_advantages(r, g, "greedy")
    others = scst_advantages(r, g, "mean_others")
    for i in range(5):
        for j in range(4):
            assert greedy[i, j] == pytest.approx(r[i, j] - g[i])
            rest = [r[i, m] for m in range(4) if m != j]
            assert others[i, j] == pytest.approx(r[i, j] - sum(rest) / len(rest))


def test_bad_baselines_are_refused():
    with pytest.raises(ConfigError, match="valid: greedy, mean_others"):
        scst_advantages(np.zeros((2, 2)), np.zeros(2), "critic")
    with pytest.raises(ConfigError, match="at least 2 samples"):
        scst_advantages(np.zeros((2, 1)), np.zeros(2), "mean_others")


def test_loss_and_gradient_against_a_naive_loop():
    torch.manual_seed(0)
    n, t = 6, 5
    logp = torch.randn(n, t).clamp(max=0).requires_grad_()
    lengths = [5, 1, 3, 4, 2, 5]
    mask = torch.tensor([[1.0 if s < lengths[i] else 0.0 for s in range(t)] for i in range(n)])
    adv = torch.randn(n)
    mu = logp.detach() + 0.3 * torch.randn(n, t)
    loss = scst_loss(logp, mask, adv, mu, rho_bar=1.0)
    naive = 0.0
    for i in range(n):
        for s in range(lengths[i]):
            c = min(1.0, float(torch.exp(logp[i, s].detach() - mu[i, s])))
            naive = naive - adv[i] * c * logp[i, s]
    naive = naive / n
    assert float(loss) == pytest.approx(float(naive), rel=1e-5)
    (grad,) = torch.autograd.grad(loss, logp)
    assert float(grad[1, 3]) == 0.0, "padding gets no gradient"
    assert float(grad[0, 0]) == pytest.approx(
        -float(adv[0]) * min(1.0, float(torch.exp(logp[0, 0] - mu[0, 0]))) / n, rel=1e-5
    )
    on_policy = scst_loss(logp, mask, adv)
    assert float(on_policy) == pytest.approx(float(-(adv * (logp * mask).sum(1)).mean()), rel=1e-6)


def test_masked_entropy_matches_loop():
    logits = torch.randn(2, 3, 4)
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    want = []
    for i, j in [(0, 0), (0, 1), (1, 0)]:
        p = torch.softmax(logits[i, j], -1)
        want.append(float(-(p * p.log()).sum()))
    assert float(masked_entropy(logits, mask)) == pytest.approx(sum(want) / 3, rel=1e-5)
