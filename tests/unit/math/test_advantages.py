"""GAE against a naive O(T^2) sum over the definition (numpy, float64): for every t,
``A_t = sum_l (prod_{k<l} d_{t+k} lambda) delta_{t+l}``, with no backward recursion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlfleet.errors import ConfigError
from rlfleet.math.advantages import gae

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def naive_gae(rewards, values, bootstrap, discounts, lam):
    n_t, n_b = values.shape
    adv = np.zeros((n_t, n_b))
    for b in range(n_b):
        v = list(values[:, b]) + [bootstrap[b]]
        deltas = [rewards[t, b] + discounts[t, b] * v[t + 1] - v[t] for t in range(n_t)]
        for t in range(n_t):
            total, coef = 0.0, 1.0
            for step in range(t, n_t):
                total += coef * deltas[step]
                coef *= discounts[step, b] * lam
            adv[t, b] = total
    return adv, adv + values


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.95, 1.0])
def test_gae_matches_the_naive_sum_with_episode_ends_inside(lam):
    rng = np.random.default_rng(3)
    n_t, n_b = 9, 4
    rewards = rng.normal(size=(n_t, n_b))
    values = rng.normal(size=(n_t, n_b))
    bootstrap = rng.normal(size=n_b)
    # discounts differ per batch element and hit 0 where episodes end
    discounts = np.where(rng.random((n_t, n_b)) < 0.2, 0.0, rng.uniform(0.9, 0.99, (n_t, n_b)))
    want_adv, want_ret = naive_gae(rewards, values, bootstrap, discounts, lam)
    got = gae(
        torch.tensor(rewards),
        torch.tensor(values),
        torch.tensor(bootstrap),
        torch.tensor(discounts),
        lam,
    )
    np.testing.assert_allclose(got.advantages.numpy(), want_adv, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.returns.numpy(), want_ret, rtol=1e-12, atol=1e-12)


def test_lambda_one_gives_discounted_returns_and_zero_the_td_error():
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[0.5], [0.25], [0.0]])
    boot = torch.tensor([10.0])
    disc = torch.full((3, 1), 0.5)
    ret = gae(rewards, values, boot, disc, 1.0).returns
    assert ret[:, 0].tolist() == [1 + 0.5 * 2 + 0.25 * 3 + 0.125 * 10, 2 + 0.5 * 3 + 0.25 * 10, 8.0]
    adv0 = gae(rewards, values, boot, disc, 0.0).advantages
    assert adv0[:, 0].tolist() == [1 + 0.5 * 0.25 - 0.5, 2 + 0.0 - 0.25, 3 + 5.0 - 0.0]


def test_no_gradient_flows_into_the_targets():
    values = torch.zeros(3, 2, requires_grad=True)
    out = gae(torch.ones(3, 2), values, torch.zeros(2), torch.full((3, 2), 0.9), 0.95)
    assert not out.advantages.requires_grad and not out.returns.requires_grad


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lambda_": 1.5}, "lambda_ must be a number in"),
        ({"rewards": torch.zeros(2, 2)}, "rewards has shape"),
        ({"bootstrap_value": torch.zeros(3)}, "bootstrap_value has shape"),
        ({"values": torch.zeros(0, 2)}, "T >= 1"),
    ],
)
def test_bad_input_names_the_problem(kwargs, match):
    args = {
        "rewards": torch.zeros(3, 2),
        "values": torch.zeros(3, 2),
        "bootstrap_value": torch.zeros(2),
        "discounts": torch.zeros(3, 2),
        "lambda_": 0.9,
    }
    args.update(kwargs)
    if "values" in kwargs:
        args["rewards"] = args["discounts"] = torch.zeros(0, 2)
    with pytest.raises(ConfigError, match=match):
        gae(**args)
