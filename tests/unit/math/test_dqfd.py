"""DQfD / Ape-X DQfD math against deliberately naive per-item loops and hand-computed cases."""

from __future__ import annotations

import copy
import math
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest
import torch

from rlfleet.errors import ConfigError
from rlfleet.math.dqfd import (
    best_episodes_mask,
    expert_batch_split,
    l2_regularization,
    large_margin_loss,
    masked_mean,
    temporal_consistency_loss,
    transformed_double_q_target,
    value_rescale,
    value_rescale_inverse,
)

F64 = torch.float64

# --------------------------------------------------------------------------- naive references


def naive_margin(q_row, a_e, margin):
    """max_a [Q(s,a) + l(a_E,a)] - Q(s,a_E), one item, as written in the paper."""
    best = -math.inf
    for a, q_a in enumerate(q_row):
        best = max(best, q_a + (0.0 if a == a_e else margin))
    return best - q_row[a_e]


def naive_h(z, eps):
    z = float(z)
    sign = (z > 0) - (z < 0)
    return sign * (math.sqrt(abs(z) + 1.0) - 1.0) + eps * z


def naive_h_inv(z, eps):
    """The literal formula from the reference (algorithms.md, Ape-X DQfD)."""
    z = float(z)
    sign = (z > 0) - (z < 0)
    root = (math.sqrt(1.0 + 4.0 * eps * (abs(z) + 1.0 + eps)) - 1.0) / (2.0 * eps)
    return sign * (root**2 - 1.0)


def naive_huber(x, delta):
    return 0.5 * x * x if abs(x) <= delta else delta * (abs(x) - 0.5 * delta)


def naive_split(batch_size, fraction):
    """Round half up on the decimal as written, in exact decimal arithmetic."""
    exact = Decimal(repr(float(fraction))) * batch_size
    n_expert = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return batch_size - n_expert, n_expert


def naive_best(returns, k):
    order = sorted(range(len(returns)), key=lambda i: (-returns[i], i))
    chosen = set(order[:k])
    return [i in chosen for i in range(len(returns))]


def wide_grid():
    """-1e6..1e6 including 0, dense in log scale near 0 and linear across the whole range."""
    logs = np.logspace(-12, 6, 400)
    lin = np.linspace(-1e6, 1e6, 2001)
    return torch.from_numpy(np.unique(np.concatenate([-logs, [0.0], logs, lin])))


# --------------------------------------------------------------------------- large-margin loss


def test_margin_expert_best_by_more_than_margin_is_zero():
    q = torch.tensor([[2.0, 0.5, 1.0]], dtype=F64)  # gap to the runner-up: 1.0 > 0.8
    loss = large_margin_loss(q, torch.tensor([0]), torch.tensor([True]), margin=0.8)
    assert loss.item() == 0.0


def test_margin_expert_best_by_exactly_the_margin_is_zero():
    q = torch.tensor([[1.5, 1.0]], dtype=F64)
    assert large_margin_loss(q, torch.tensor([0]), torch.tensor([True]), margin=0.5).item() == 0.0


def test_margin_expert_best_by_less_is_margin_minus_gap():
    q = torch.tensor([[1.0, 0.7, 0.0]], dtype=F64)  # gap 0.3 < 0.8
    loss = large_margin_loss(q, torch.tensor([0]), torch.tensor([True]), margin=0.8).item()
    assert loss > 0.0
    assert loss == pytest.approx(0.8 - 0.3, abs=1e-12)


def test_margin_expert_not_best_is_best_plus_margin_minus_expert():
    q = torch.tensor([[0.0, 1.0, 0.5]], dtype=F64)
    loss = large_margin_loss(q, torch.tensor([0]), torch.tensor([True]), margin=0.8).item()
    assert loss == pytest.approx(1.0 + 0.8 - 0.0, abs=1e-12)


def test_margin_non_demo_items_contribute_zero_and_get_no_gradient():
    q = torch.tensor([[0.0, 5.0], [0.0, 5.0]], dtype=F64, requires_grad=True)
    loss = large_margin_loss(q, torch.tensor([0, 0]), torch.tensor([True, False]))
    assert loss[0].item() == pytest.approx(5.8)
    assert loss[1].item() == 0.0
    loss.sum().backward()
    # demo row: +1 on the maximising action, -1 on the expert action; non-demo row untouched.
    assert q.grad.tolist() == [[-1.0, 1.0], [0.0, 0.0]]


def test_margin_non_demo_rows_with_infinite_q_do_not_poison_the_batch():
    q = torch.tensor([[1.0, 0.0], [math.inf, -math.inf]], dtype=F64)
    loss = large_margin_loss(q, torch.tensor([0, 1]), torch.tensor([True, False]))
    assert loss.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("margin", [0.8, math.sqrt(0.999), 0.0, 2.5])
def test_margin_matches_naive_loop(margin):
    rng = np.random.default_rng(3)
    b, a = 200, 6
    q = rng.normal(scale=1.0, size=(b, a))
    a_e = rng.integers(0, a, size=b)
    # Make a third of the items "expert best by a lot" so the zero branch is exercised too.
    q[np.arange(b // 3), a_e[: b // 3]] += 20.0
    is_demo = rng.random(b) < 0.6
    got = large_margin_loss(
        torch.from_numpy(q), torch.from_numpy(a_e), torch.from_numpy(is_demo), margin
    ).numpy()
    want = [naive_margin(list(q[i]), int(a_e[i]), margin) if is_demo[i] else 0.0 for i in range(b)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert (got >= 0).all() and (got[~is_demo] == 0).all()
    assert (got[: b // 3] == 0).all() and (got[b // 3 :][is_demo[b // 3 :]] > 0).any()


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf])
def test_margin_rejects_bad_margins(bad):
    with pytest.raises(ConfigError, match="margin"):
        large_margin_loss(torch.zeros(1, 2), torch.tensor([0]), torch.tensor([True]), bad)


def test_masked_mean_against_naive_and_empty_mask():
    values = torch.tensor([1.0, 2.0, 4.0, 8.0], dtype=F64)
    mask = torch.tensor([True, False, True, False])
    assert masked_mean(values, mask).item() == pytest.approx((1.0 + 4.0) / 2)
    assert masked_mean(values, torch.zeros(4, dtype=torch.bool)).item() == 0.0


# --------------------------------------------------------------------------- value rescaling


@pytest.mark.parametrize("eps", [1e-2, 1e-3])
def test_h_and_h_inv_match_the_literal_formulas(eps):
    z = torch.linspace(-1e4, 1e4, 4001, dtype=F64)
    got_h, got_inv = value_rescale(z, eps).numpy(), value_rescale_inverse(z, eps).numpy()
    want_h = [naive_h(float(x), eps) for x in z]
    want_inv = [naive_h_inv(float(x), eps) for x in z]
    np.testing.assert_allclose(got_h, want_h, rtol=1e-12, atol=1e-12)
    # The literal inverse loses ~1e-14 absolutely to cancellation; ours does not, hence atol.
    np.testing.assert_allclose(got_inv, want_inv, rtol=1e-12, atol=1e-9)


def test_h_known_values():
    z = torch.tensor([0.0, 3.0, 8.0, -3.0, 24.0], dtype=F64)
    # sqrt(4) - 1 + 0.03, sqrt(9) - 1 + 0.08, odd symmetry, sqrt(25) - 1 + 0.24
    np.testing.assert_allclose(
        value_rescale(z).numpy(), [0.0, 1.03, 2.08, -1.03, 4.24], rtol=0, atol=1e-15
    )
    np.testing.assert_allclose(
        value_rescale_inverse(torch.tensor([0.0, 1.03, 2.08, -1.03, 4.24], dtype=F64)).numpy(),
        z.numpy(),
        rtol=1e-14,
        atol=1e-14,
    )


@pytest.mark.parametrize("eps", [1e-2, 1e-3, 0.0])
def test_round_trips_over_a_wide_range_float64(eps):
    """value_rescale(value_rescale_inverse(x)) = x and value_rescale_inverse(value_rescale(x)) = x on -1e6..1e6 incl. 0: float64, rtol 1e-12, atol 0."""
    x = wide_grid()
    assert (x == 0).any() and x.min() == -1e6 and x.max() == 1e6
    np.testing.assert_allclose(
        value_rescale_inverse(value_rescale(x, eps), eps).numpy(), x.numpy(), rtol=1e-12, atol=0
    )
    np.testing.assert_allclose(
        value_rescale(value_rescale_inverse(x, eps), eps).numpy(), x.numpy(), rtol=1e-12, atol=0
    )
    assert value_rescale(torch.zeros(1, dtype=F64), eps).item() == 0.0
    assert value_rescale_inverse(torch.zeros(1, dtype=F64), eps).item() == 0.0


def test_round_trip_keeps_relative_precision_near_zero_in_float32():
    # The literal formulas cancel catastrophically here: in float32 their round trip is off by
    # 2000% at 1e-7 and 160% at 3e-6; the rewritten forms stay within ~1e-7 relative.
    x = torch.tensor([1e-7, -3e-6, 1e-4, 0.5, -2.0, 1e3], dtype=torch.float32)
    np.testing.assert_allclose(
        value_rescale_inverse(value_rescale(x)).numpy(), x.numpy(), rtol=1e-5, atol=0
    )
    np.testing.assert_allclose(
        value_rescale(value_rescale_inverse(x)).numpy(), x.numpy(), rtol=1e-5, atol=0
    )


def test_h_is_strictly_increasing_and_odd():
    x = wide_grid()
    y = value_rescale(x)
    assert (y[1:] > y[:-1]).all()
    np.testing.assert_array_equal(value_rescale(-x).numpy(), (-y).numpy())


@pytest.mark.parametrize("bad", [-1e-3, math.nan, math.inf])
def test_h_rejects_bad_eps(bad):
    for fn in (value_rescale, value_rescale_inverse):
        with pytest.raises(ConfigError, match="eps"):
            fn(torch.zeros(1), bad)


def test_transformed_target_hand_computed_cases():
    # h(3) = 1.03, h(8) = 2.08, h(15) = 3.15, h(24) = 4.24 (eps = 1e-2), so h_inv of those is exact.
    reward = torch.tensor([5.0, 3.0, -7.0, 7.0, 20.0], dtype=F64)
    discount = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.5], dtype=F64)
    next_q_online = torch.tensor(
        [[0.0, 1.0, -1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 2.0], [5.0, 0.0, 1.0], [0.0, 3.0, 1.0]],
        dtype=F64,
    )
    next_q_target = torch.tensor(
        [
            [99.0, 1.03, 99.0],  # online picks 1 -> h_inv = 3 -> h(5 + 3) = 2.08
            [50.0, 50.0, 50.0],  # terminated: h(3) = 1.03 whatever the bootstrap
            [9.0, 9.0, -2.08],  # online picks 2 -> h_inv = -8 -> h(-7 - 8) = -3.15
            [2.08, 4.24, 0.0],  # online picks 0 though target prefers 1 -> h(7 + 8) = 3.15
            [0.0, 1.03, 0.0],  # online picks 1 -> h_inv = 3 -> h(20 + 0.5*3) = h(21.5)
        ],
        dtype=F64,
    )
    got = transformed_double_q_target(reward, discount, next_q_online, next_q_target)
    want = [2.08, 1.03, -3.15, 3.15, math.sqrt(22.5) - 1.0 + 0.215]
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-12)
    # Plain DQN selection (target picks its own argmax 1 in row 3): h(7 + 24) = sqrt(32) - 1 + .31
    plain = transformed_double_q_target(
        reward, discount, next_q_online, next_q_target, double=False
    )
    assert plain[3].item() == pytest.approx(math.sqrt(32.0) - 1.0 + 0.31, abs=1e-12)


def test_transformed_target_matches_naive_loop_and_has_no_gradient():
    rng = np.random.default_rng(5)
    b, a, eps = 64, 4, 1e-2
    reward = rng.normal(scale=10.0, size=b)
    discount = rng.choice([0.0, 0.999, 0.999**10], size=b)
    q_online = rng.normal(scale=3.0, size=(b, a))
    q_target = rng.normal(scale=3.0, size=(b, a))
    q_target_t = torch.from_numpy(q_target).requires_grad_(True)
    got = transformed_double_q_target(
        torch.from_numpy(reward),
        torch.from_numpy(discount),
        torch.from_numpy(q_online),
        q_target_t,
        eps,
    )
    assert not got.requires_grad
    want = []
    for i in range(b):
        a_star = int(np.argmax(q_online[i]))
        inner = reward[i] + discount[i] * naive_h_inv(float(q_target[i, a_star]), eps)
        want.append(naive_h(inner, eps))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- temporal consistency


def test_tc_loss_hand_computed():
    current = torch.tensor([[1.0, 3.0], [0.0, 2.0]], dtype=F64)
    previous = torch.tensor([[0.0, 1.5], [0.5, -9.0]], dtype=F64)
    actions = torch.tensor([1, 0])
    # changes: 3 - 1.5 = 1.5 -> Huber 1.0; 0 - 0.5 = -0.5 -> 0.125; mean 0.5625
    assert temporal_consistency_loss(current, previous, actions).item() == pytest.approx(0.5625)
    weights = torch.tensor([2.0, 0.0], dtype=F64)
    assert temporal_consistency_loss(current, previous, actions, weights).item() == 1.0


@pytest.mark.parametrize("delta", [1.0, 0.25])
def test_tc_loss_matches_naive_loop(delta):
    rng = np.random.default_rng(7)
    b, a = 48, 5
    cur = rng.normal(scale=2.0, size=(b, a))
    prev = cur + rng.normal(scale=1.0, size=(b, a))
    actions = cur.argmax(axis=1)  # the current greedy action, as in the paper
    weights = rng.uniform(0.1, 1.0, size=b)
    got = temporal_consistency_loss(
        torch.from_numpy(cur),
        torch.from_numpy(prev),
        torch.from_numpy(actions),
        torch.from_numpy(weights),
        delta,
    ).item()
    want = np.mean(
        [
            weights[i] * naive_huber(cur[i, actions[i]] - prev[i, actions[i]], delta)
            for i in range(b)
        ]
    )
    assert got == pytest.approx(want, rel=1e-12)
    unweighted = temporal_consistency_loss(
        torch.from_numpy(cur), torch.from_numpy(prev), torch.from_numpy(actions), delta=delta
    ).item()
    want_unweighted = np.mean(
        [naive_huber(cur[i, actions[i]] - prev[i, actions[i]], delta) for i in range(b)]
    )
    assert unweighted == pytest.approx(want_unweighted, rel=1e-12)


def test_tc_gradient_reaches_current_but_not_previous_parameters():
    torch.manual_seed(0)
    current_net = torch.nn.Linear(3, 4).double()
    previous_net = copy.deepcopy(current_net)
    with torch.no_grad():
        for p in current_net.parameters():
            p.add_(0.5)  # one "update" later: the two parameter sets differ
    next_obs = torch.randn(8, 3, dtype=F64)
    next_q_current = current_net(next_obs)
    next_q_previous = previous_net(next_obs)  # deliberately built with grad enabled
    assert next_q_previous.requires_grad
    actions = next_q_current.argmax(1)
    loss = temporal_consistency_loss(next_q_current, next_q_previous, actions)
    loss.backward()
    assert all(p.grad is None for p in previous_net.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in current_net.parameters())


def test_tc_gradient_on_q_values_matches_naive_derivative():
    cur = torch.tensor([[1.0, 3.0], [0.0, 2.0], [4.0, 0.0]], dtype=F64, requires_grad=True)
    prev = torch.tensor([[0.0, 1.5], [0.5, 0.0], [3.9, 0.0]], dtype=F64, requires_grad=True)
    actions = torch.tensor([1, 0, 0])
    temporal_consistency_loss(cur, prev, actions).backward()
    # d/dx mean(huber(x)) = clip(x, -1, 1) / B at the chosen action, 0 elsewhere.
    want = [[0.0, 1.0 / 3], [-0.5 / 3, 0.0], [0.1 / 3, 0.0]]
    np.testing.assert_allclose(cur.grad.numpy(), want, rtol=1e-9, atol=1e-12)
    assert prev.grad is None


# --------------------------------------------------------------------------- L2


def test_l2_regularization_against_naive_sum_and_gradient():
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    net = net.double()
    naive = 0.0
    for p in net.parameters():
        for v in p.detach().flatten().tolist():
            naive += v * v
    got = l2_regularization(net.parameters())
    assert got.dim() == 0
    assert got.item() == pytest.approx(naive, rel=1e-12)
    got.backward()
    for p in net.parameters():
        torch.testing.assert_close(p.grad, 2.0 * p.detach())


def test_l2_regularization_of_known_tensors_and_empty():
    tensors = [torch.tensor([1.0, -2.0]), torch.tensor([[3.0]])]
    assert l2_regularization(tensors).item() == 14.0
    assert l2_regularization([]).item() == 0.0


# --------------------------------------------------------------------------- batch composition

FRACTIONS = [0.0, 0.01, 0.1, 0.125, 0.2, 0.25, 0.3, 1 / 3, 0.35, 0.5, 0.7, 0.75, 0.999, 1.0]


def test_expert_batch_split_is_exactly_at_the_ratio_for_many_sizes():
    for fraction in FRACTIONS:
        for batch_size in range(1, 1025):
            n_agent, n_expert = expert_batch_split(batch_size, fraction)
            assert (n_agent, n_expert) == naive_split(batch_size, fraction)
            assert n_agent + n_expert == batch_size and n_agent >= 0 and n_expert >= 0
            # The closest achievable integer: never more than half an item off the exact ratio.
            exact = Decimal(repr(fraction)) * batch_size
            assert abs(n_expert - exact) <= Decimal("0.5")


def test_expert_batch_split_known_values_and_rounding():
    assert expert_batch_split(512) == (384, 128)  # default 25% (Ape-X DQfD)
    assert expert_batch_split(32, 0.25) == (24, 8)
    assert expert_batch_split(10, 0.35) == (6, 4)  # 3.5 rounds up; binary 0.35 would give 3
    assert expert_batch_split(2, 0.25) == (1, 1)  # 0.5 rounds up (round() would give 0)
    assert expert_batch_split(6, 0.25) == (4, 2)  # 1.5 rounds up (round() gives 2 as well)
    assert expert_batch_split(4, 0.1) == (4, 0)  # documented: small batches can get 0 experts
    assert expert_batch_split(7, 0.0) == (7, 0)
    assert expert_batch_split(7, 1.0) == (0, 7)
    assert expert_batch_split(7, 1) == (0, 7)  # an int fraction is fine


@pytest.mark.parametrize("bad", [-0.01, 1.01, math.nan, math.inf, "0.25", None, True])
def test_expert_batch_split_rejects_bad_fractions(bad):
    with pytest.raises(ConfigError, match=r"expert_fraction.*\[0, 1\]"):
        expert_batch_split(32, bad)


@pytest.mark.parametrize("bad", [0, -4, 2.5, 32.0, "32", True])
def test_expert_batch_split_rejects_bad_batch_sizes(bad):
    with pytest.raises(ConfigError, match="batch_size.*>= 1"):
        expert_batch_split(bad, 0.25)


def test_config_error_is_a_value_error():
    with pytest.raises(ValueError):
        expert_batch_split(0, 0.25)


# --------------------------------------------------------------------------- best episodes


def test_best_episodes_known_cases():
    returns = [1.0, 5.0, 3.0, 5.0, 2.0]
    assert best_episodes_mask(returns, top_k=2).tolist() == [False, True, False, True, False]
    assert best_episodes_mask(returns, top_k=3).tolist() == [False, True, True, True, False]
    assert best_episodes_mask(returns, top_k=99).tolist() == [True] * 5
    # ceil(5 * 0.5) = 3; ceil(5 * 0.2) = 1; ceil(10 * 0.3) = 3 (binary 0.3 would give 4)
    assert best_episodes_mask(returns, top_fraction=0.5).sum().item() == 3
    assert best_episodes_mask(returns, top_fraction=0.2).tolist() == [
        False,
        True,
        False,
        False,
        False,
    ]
    assert (
        best_episodes_mask(list(range(10)), top_fraction=0.3).tolist() == [False] * 7 + [True] * 3
    )
    assert best_episodes_mask(returns, top_fraction=0.01).sum().item() == 1  # never empty
    assert best_episodes_mask(returns, top_fraction=1.0).all()


def test_best_episodes_ties_go_to_the_earlier_episode():
    assert best_episodes_mask([2.0, 2.0, 2.0, 1.0], top_k=2).tolist() == [True, True, False, False]
    assert best_episodes_mask([1.0, 2.0, 2.0, 2.0], top_k=2).tolist() == [False, True, True, False]


def test_best_episodes_match_naive_selection():
    rng = np.random.default_rng(11)
    for n in (1, 2, 7, 50, 333):
        returns = rng.integers(-5, 6, size=n).astype(np.float64)  # many ties
        for k in (1, 2, 5, n):
            got = best_episodes_mask(torch.from_numpy(returns), top_k=k).tolist()
            assert got == naive_best(list(returns), min(k, n))
        for fraction in (0.1, 0.25, 0.5, 1.0):
            got = best_episodes_mask(returns.tolist(), top_fraction=fraction).tolist()
            k = math.ceil(Decimal(repr(fraction)) * n)
            assert got == naive_best(list(returns), k)


def test_best_episodes_mask_restricts_the_margin_loss():
    episode_of_item = torch.tensor([0, 1, 2, 1])
    best = best_episodes_mask([10.0, 50.0, 30.0], top_k=1)  # only episode 1
    is_demo = torch.tensor([True, True, True, False]) & best[episode_of_item]
    q = torch.zeros(4, 2, dtype=F64)
    loss = large_margin_loss(q, torch.zeros(4, dtype=torch.long), is_demo)
    assert loss.tolist() == pytest.approx([0.0, 0.8, 0.0, 0.0])


def test_best_episodes_empty_input():
    assert best_episodes_mask([], top_k=3).tolist() == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one"),
        ({"top_fraction": 0.5, "top_k": 2}, "exactly one"),
        ({"top_fraction": 0.0}, r"top_fraction.*\(0, 1\]"),
        ({"top_fraction": 1.5}, r"top_fraction.*\(0, 1\]"),
        ({"top_fraction": math.nan}, r"top_fraction.*\(0, 1\]"),
        ({"top_k": 0}, "top_k.*>= 1"),
        ({"top_k": 1.5}, "top_k.*>= 1"),
    ],
)
def test_best_episodes_rejects_bad_options(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        best_episodes_mask([1.0, 2.0, 3.0], **kwargs)


def test_best_episodes_rejects_nan_returns_and_bad_shape():
    with pytest.raises(ConfigError, match=r"NaN at episode indices \[1\]"):
        best_episodes_mask([1.0, math.nan, 3.0], top_k=1)
    with pytest.raises(ConfigError, match="1-D"):
        best_episodes_mask([[1.0, 2.0]], top_k=1)
