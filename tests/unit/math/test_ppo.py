"""PPO's loss terms against naive per-sample loops (python floats)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rlfleet.errors import ConfigError
from rlfleet.math.ppo import (
    approx_kl,
    clip_fraction,
    clipped_surrogate_loss,
    normalize_advantages,
    value_loss,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_clipped_surrogate_matches_a_naive_loop_across_both_clip_edges():
    rng = np.random.default_rng(0)
    # ratios spread from 0.5 to 1.6: below 1 - eps, inside, above 1 + eps; advantages both signs
    log_ratio = np.log(rng.uniform(0.5, 1.6, 200))
    adv = rng.normal(size=200)
    eps = 0.2
    terms = []
    for lr, a in zip(log_ratio, adv, strict=True):
        r = math.exp(lr)
        clipped = min(max(r, 1 - eps), 1 + eps)
        terms.append(min(r * a, clipped * a))
    want = -sum(terms) / len(terms)
    got = clipped_surrogate_loss(torch.tensor(log_ratio), torch.tensor(adv), eps)
    assert got.item() == pytest.approx(want, rel=1e-12)
    frac = sum(abs(math.exp(x) - 1) > eps for x in log_ratio) / len(log_ratio)
    assert clip_fraction(torch.tensor(log_ratio), eps).item() == pytest.approx(frac)


def test_surrogate_gradient_is_zero_where_the_clip_is_active():
    # A > 0 and r > 1 + eps: clipped, no gradient; A > 0 and r < 1 - eps: unclipped term wins
    log_ratio = torch.tensor([math.log(1.5), math.log(0.5)], requires_grad=True)
    loss = clipped_surrogate_loss(log_ratio, torch.tensor([1.0, 1.0]), 0.2)
    loss.backward()
    assert log_ratio.grad[0].item() == 0.0
    assert log_ratio.grad[1].item() == pytest.approx(-0.5 / 2)


def test_value_loss_plain_and_clipped_match_naive_loops():
    rng = np.random.default_rng(1)
    v, ret, old = rng.normal(size=(3, 50))
    clip = 0.3
    plain = sum((a - b) ** 2 for a, b in zip(v, ret, strict=True)) / 50
    clipped_terms = []
    for a, b, o in zip(v, ret, old, strict=True):
        c = o + min(max(a - o, -clip), clip)
        clipped_terms.append(max((a - b) ** 2, (c - b) ** 2))
    t = torch.tensor
    assert value_loss(t(v), t(ret)).item() == pytest.approx(plain, rel=1e-12)
    got = value_loss(t(v), t(ret), t(old), clip).item()
    assert got == pytest.approx(sum(clipped_terms) / 50, rel=1e-12)


def test_approx_kl_is_the_naive_estimator_and_zero_on_policy():
    log_ratio = np.array([-0.3, 0.0, 0.2, 0.7])
    want = sum(math.exp(x) - 1 - x for x in log_ratio) / 4
    assert approx_kl(torch.tensor(log_ratio)).item() == pytest.approx(want, rel=1e-12)
    assert approx_kl(torch.zeros(5)).item() == 0.0


def test_advantage_normalisation():
    adv = torch.tensor([1.0, 2.0, 3.0, 6.0])
    out = normalize_advantages(adv)
    assert out.mean().item() == pytest.approx(0.0, abs=1e-7)
    assert out.std().item() == pytest.approx(1.0, rel=1e-6)
    assert normalize_advantages(torch.tensor([5.0])).item() == 0.0


def test_bad_input_is_refused():
    with pytest.raises(ConfigError, match="clip_eps must be a number > 0"):
        clipped_surrogate_loss(torch.zeros(2), torch.zeros(2), 0.0)
    with pytest.raises(ConfigError, match="log_ratio has shape"):
        clipped_surrogate_loss(torch.zeros(2), torch.zeros(3), 0.2)
    with pytest.raises(ConfigError, match="value clipping needs old_values"):
        value_loss(torch.zeros(2), torch.zeros(2), None, 0.2)
