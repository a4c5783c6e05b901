"""Policy heads: sampling matches the distribution they score, greedy actions respect the
bounds, the state-independent log-std is one learned vector, and a categorical head keeps the
parameter names of the linear layer it replaced."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rlfleet.errors import ConfigError
from rlfleet.models import build_policy_value_network
from rlfleet.models.heads import CategoricalHead, GaussianHead, is_continuous_head

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_categorical_sampling_follows_the_softmax_and_is_seeded():
    head = CategoricalHead(3, 4)
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.3, 0.4]])).expand(20_000, 4)
    a = head.sample(logits, torch.Generator().manual_seed(0))
    freq = np.bincount(a.numpy(), minlength=4) / len(a)
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.3, 0.4], atol=0.015)
    b = head.sample(logits, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    lp = head.log_prob(logits[:2], torch.tensor([0, 3]))
    np.testing.assert_allclose(lp.numpy(), np.log([0.1, 0.4]), rtol=1e-5)
    ent = head.entropy(logits[:1]).item()
    assert ent == pytest.approx(-sum(p * math.log(p) for p in (0.1, 0.2, 0.3, 0.4)), rel=1e-5)
    assert head.greedy(logits[:1]).item() == 3 and not is_continuous_head(head)


@pytest.mark.parametrize("squash", ["tanh", "clip"])
def test_gaussian_samples_stay_in_bounds_after_squashing_and_greedy_is_the_mean(squash):
    head = GaussianHead(5, [-2.0, 0.0], [2.0, 1.0], squash=squash, log_std_init=0.5)
    params = head(torch.randn(1000, 5))
    raw = head.sample(params, torch.Generator().manual_seed(1))
    env = head.to_env(raw)
    assert raw.shape == (1000, 2) and is_continuous_head(head)
    assert (env[:, 0] >= -2).all() and (env[:, 0] <= 2).all()
    assert (env[:, 1] >= 0).all() and (env[:, 1] <= 1).all()
    assert (raw.abs() > 3).any(), "raw samples are unsquashed"
    mean, log_std = head.split(params)
    assert torch.allclose(log_std, torch.full_like(log_std, 0.5))
    greedy = head.greedy(params)
    want = -2 + (torch.tanh(mean[:, 0]) + 1) * 2 if squash == "tanh" else mean[:, 0].clamp(-2, 2)
    assert torch.allclose(greedy[:, 0], want)
    assert torch.isfinite(head.log_prob(params, raw)).all()


def test_gaussian_sample_statistics_match_mean_and_std():
    head = GaussianHead(2, [-1.0], [1.0], squash="clip", log_std_init=math.log(0.3))
    params = torch.tensor([[0.25, math.log(0.3)]]).expand(50_000, 2)
    raw = head.sample(params, torch.Generator().manual_seed(2))
    assert raw.mean().item() == pytest.approx(0.25, abs=0.01)
    assert raw.std().item() == pytest.approx(0.3, abs=0.01)


def test_state_independent_log_std_is_one_parameter_and_state_dependent_is_a_layer():
    shared = GaussianHead(4, [-1.0] * 3, [1.0] * 3)
    assert tuple(shared.log_std.shape) == (3,) and shared.log_std.requires_grad
    per_state = GaussianHead(4, [-1.0] * 3, [1.0] * 3, state_dependent_std=True, log_std_init=-1)
    params = per_state(torch.randn(2, 4))
    assert torch.allclose(per_state.split(params)[1], torch.full((2, 3), -1.0))
    assert "low" not in per_state.state_dict(), "bounds come from the env, not the checkpoint"


def test_bad_heads_are_refused():
    with pytest.raises(ConfigError, match="finite action bounds"):
        GaussianHead(4, [-math.inf], [1.0])
    with pytest.raises(ConfigError, match="unknown squash"):
        GaussianHead(4, [-1.0], [1.0], squash="sigmoid")
    with pytest.raises(ConfigError, match="high must exceed low"):
        GaussianHead(4, [1.0], [1.0])


def test_policy_value_network_keeps_its_parameter_names_and_takes_a_gaussian_head():
    net = build_policy_value_network((4,), 2, hidden=(8,))
    assert {"policy.weight", "policy.bias"} <= set(net.state_dict())
    cont = build_policy_value_network(
        (3,), 1, hidden=(8,), head=lambda w: GaussianHead(w, [-2.0], [2.0])
    )
    params, value = cont(torch.zeros(5, 3))
    assert params.shape == (5, 2) and value.shape == (5,)


def test_config_names_agree_with_the_math():
    from rlfleet.math.distributions import SQUASHES
    from rlfleet.models.names import SQUASHES as NAMES

    assert SQUASHES == NAMES
