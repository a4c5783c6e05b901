"""Gaussian log-probabilities, entropy and the tanh change of variables against naive formulas
(python floats, one dimension at a time), and the density of a squashed action checked by
integrating it numerically over the box."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rlfleet.errors import ConfigError
from rlfleet.math.distributions import (
    gaussian_entropy,
    gaussian_log_prob,
    squash_to_bounds,
    squashed_log_prob,
    tanh_log_det_jacobian,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def naive_normal_logpdf(x, m, s):
    return math.log(1.0 / (s * math.sqrt(2 * math.pi)) * math.exp(-((x - m) ** 2) / (2 * s * s)))


def test_gaussian_log_prob_and_entropy_match_the_textbook_formulas():
    rng = np.random.default_rng(0)
    x, mean = rng.normal(size=(2, 5, 3))
    log_std = rng.uniform(-1.5, 0.8, size=(5, 3))
    got = gaussian_log_prob(torch.tensor(x), torch.tensor(mean), torch.tensor(log_std)).numpy()
    for i in range(5):
        want = sum(
            naive_normal_logpdf(x[i, d], mean[i, d], math.exp(log_std[i, d])) for d in range(3)
        )
        assert got[i] == pytest.approx(want, rel=1e-12)
    ent = gaussian_entropy(torch.tensor(log_std)).numpy()
    for i in range(5):
        want = sum(0.5 * math.log(2 * math.pi * math.e * math.exp(2 * ls)) for ls in log_std[i])
        assert ent[i] == pytest.approx(want, rel=1e-12)


def test_state_independent_log_std_broadcasts():
    x = torch.zeros(4, 2)
    out = gaussian_log_prob(x, torch.zeros(4, 2), torch.zeros(2).expand(4, 2))
    assert out.shape == (4,)


def test_tanh_correction_matches_the_naive_formula_and_stays_finite_far_out():
    u = np.array([[-3.0, 0.0, 0.4], [1.2, -0.7, 2.5]])
    got = tanh_log_det_jacobian(torch.tensor(u)).numpy()
    for i in range(2):
        assert got[i] == pytest.approx(
            sum(math.log(1 - math.tanh(v) ** 2) for v in u[i]), rel=1e-10
        )
    far = tanh_log_det_jacobian(torch.tensor([[30.0, -40.0]], dtype=torch.float32))
    assert torch.isfinite(far).all()
    # 2 (log 2 - |u|) asymptotically
    assert far.item() == pytest.approx(2 * (math.log(2) - 30) + 2 * (math.log(2) - 40), rel=1e-5)


def test_squashed_log_prob_is_the_density_of_the_bounded_action():
    low, high = torch.tensor([-2.0]), torch.tensor([2.0])
    f64 = torch.float64
    mean, log_std = torch.tensor([[0.3]], dtype=f64), torch.tensor([[-0.2]], dtype=f64)
    u = torch.tensor([[0.9]], dtype=f64)
    a = squash_to_bounds(u, low.double(), high.double(), "tanh").item()
    want = naive_normal_logpdf(0.9, 0.3, math.exp(-0.2)) - math.log((1 - math.tanh(0.9) ** 2) * 2.0)
    got = squashed_log_prob(u, mean.double(), log_std.double(), low.double(), high.double(), "tanh")
    assert got.item() == pytest.approx(want, rel=1e-12)
    assert a == pytest.approx(-2 + (math.tanh(0.9) + 1) * 2)
    # the density integrates to 1 over the box: sum over a fine grid of u of p(a(u)) * da/du
    grid = torch.linspace(-12, 12, 200_001, dtype=torch.float64)[:, None]
    logp = squashed_log_prob(
        grid, mean.double(), log_std.double(), low.double(), high.double(), "tanh"
    )
    da = (squash_to_bounds(grid, low.double(), high.double(), "tanh")[:, 0]).diff()
    assert float((logp.exp()[1:] * da).sum()) == pytest.approx(1.0, abs=1e-4)


def test_clip_mode_uses_the_unclipped_sample():
    low, high = torch.tensor([-1.0, -1.0]), torch.tensor([1.0, 1.0])
    u = torch.tensor([[3.0, -0.5]])
    mean, log_std = torch.zeros(1, 2), torch.zeros(1, 2)
    assert squash_to_bounds(u, low, high, "clip").tolist() == [[1.0, -0.5]]
    got = squashed_log_prob(u, mean, log_std, low, high, "clip")
    assert got.item() == pytest.approx(gaussian_log_prob(u, mean, log_std).item())


def test_bad_bounds_and_modes_are_named():
    with pytest.raises(ConfigError, match="bounds must be finite"):
        squash_to_bounds(torch.zeros(1, 1), torch.tensor([-math.inf]), torch.tensor([1.0]), "tanh")
    with pytest.raises(ConfigError, match="unknown squash 'sigmoid'; valid: tanh, clip"):
        squash_to_bounds(torch.zeros(1, 1), torch.tensor([-1.0]), torch.tensor([1.0]), "sigmoid")
