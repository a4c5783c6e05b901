"""V-trace against a deliberately naive O(T^2) loop over the definition (numpy, float64).

The reference below is written from the formula in ``shared/reference/algorithms.md``, not from
the implementation: for every ``s`` it sums ``(prod_{k=s}^{t-1} gamma_k c_k) * delta_t`` over the
rest of the unroll, without the backward recursion the implementation uses.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rlfleet.errors import ConfigError
from rlfleet.math.vtrace import vtrace_from_importance_weights, vtrace_from_logits

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _clip(x: float, threshold: float | None) -> float:
    return x if threshold is None else min(threshold, x)


def naive_vtrace(log_rhos, discounts, rewards, values, bootstrap, rho_bar, pg_rho_bar, c_bar, lam):
    """``v_s = V(x_s) + sum_{t=s}^{T-1} (prod_{k=s}^{t-1} gamma_k c_k) delta_t`` one term at a time."""
    n_t, n_b = values.shape
    vs = np.zeros((n_t, n_b))
    adv = np.zeros((n_t, n_b))
    for b in range(n_b):

        def value(t, b=b):  # V(x_t), with V(x_T) = the bootstrap value
            return bootstrap[b] if t == n_t else values[t, b]

        for s in range(n_t):
            total = value(s)
            for t in range(s, n_t):
                coef = 1.0
                for k in range(s, t):
                    c_k = lam * _clip(math.exp(log_rhos[k, b]), c_bar)
                    coef *= discounts[k, b] * c_k
                rho_t = _clip(math.exp(log_rhos[t, b]), rho_bar)
                delta_t = rho_t * (rewards[t, b] + discounts[t, b] * value(t + 1) - value(t))
                total += coef * delta_t
            vs[s, b] = total
        for s in range(n_t):
            v_next = bootstrap[b] if s == n_t - 1 else vs[s + 1, b]
            rho_pg = _clip(math.exp(log_rhos[s, b]), pg_rho_bar)
            adv[s, b] = rho_pg * (rewards[s, b] + discounts[s, b] * v_next - values[s, b])
    return vs, adv


def make_unroll(seed: int, n_t: int = 12, n_b: int = 6):
    """Log-ratios spread over both sides of every threshold; per-element discounts; terminals."""
    rng = np.random.default_rng(seed)
    log_rhos = rng.uniform(-2.5, 2.5, size=(n_t, n_b))
    gammas = np.array([0.99, 0.9, 0.5, 1.0, 0.95, 0.8])[:n_b]
    discounts = np.tile(gammas, (n_t, 1))
    # Terminal steps inside the unroll: at the first step, in the middle, and at the last step.
    discounts[0, 1] = 0.0
    discounts[5, 2] = 0.0
    discounts[7, 0] = 0.0
    discounts[n_t - 1, 3] = 0.0
    discounts[3, 4] = discounts[9, 4] = 0.0
    rewards = rng.normal(size=(n_t, n_b))
    values = rng.normal(size=(n_t, n_b))
    bootstrap = rng.normal(size=n_b)
    return log_rhos, discounts, rewards, values, bootstrap


def _t(x, dtype=torch.float64):
    return torch.tensor(x, dtype=dtype)


CASES = [
    # rho_bar, pg_rho_bar, c_bar, lambda
    pytest.param(1.0, 1.0, 1.0, 1.0, id="paper-defaults"),
    pytest.param(1.0, 1.0, 1.0, 0.7, id="lambda-0.7"),
    pytest.param(1.0, 1.0, 1.0, 0.0, id="lambda-0-one-step"),
    pytest.param(2.0, 1.5, 0.8, 0.9, id="distinct-thresholds"),
    pytest.param(None, None, None, 1.0, id="no-clipping"),
    pytest.param(None, 1.0, 1.0, 0.95, id="rho-unclipped-only"),
]


@pytest.mark.parametrize(("rho_bar", "pg_rho_bar", "c_bar", "lam"), CASES)
def test_matches_naive_definition_float64(rho_bar, pg_rho_bar, c_bar, lam):
    log_rhos, discounts, rewards, values, bootstrap = make_unroll(seed=0)
    # The data must actually exercise both sides of the clip, or the test proves little.
    assert (log_rhos > 0.5).sum() > 5 and (log_rhos < -0.5).sum() > 5
    out = vtrace_from_importance_weights(
        _t(log_rhos),
        _t(discounts),
        _t(rewards),
        _t(values),
        _t(bootstrap),
        clip_rho_threshold=rho_bar,
        clip_pg_rho_threshold=pg_rho_bar,
        clip_c_threshold=c_bar,
        lambda_=lam,
    )
    want_vs, want_adv = naive_vtrace(
        log_rhos, discounts, rewards, values, bootstrap, rho_bar, pg_rho_bar, c_bar, lam
    )
    assert out.vs.dtype == torch.float64 and out.vs.shape == (12, 6)
    np.testing.assert_allclose(out.vs.numpy(), want_vs, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(out.pg_advantages.numpy(), want_adv, rtol=1e-10, atol=1e-10)


def test_matches_naive_definition_float32():
    log_rhos, discounts, rewards, values, bootstrap = make_unroll(seed=1, n_t=20)
    out = vtrace_from_importance_weights(
        *(_t(x, torch.float32) for x in (log_rhos, discounts, rewards, values, bootstrap)),
        lambda_=0.9,
    )
    want_vs, want_adv = naive_vtrace(
        log_rhos, discounts, rewards, values, bootstrap, 1.0, 1.0, 1.0, 0.9
    )
    assert out.vs.dtype == torch.float32
    np.testing.assert_allclose(out.vs.numpy(), want_vs, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.pg_advantages.numpy(), want_adv, rtol=1e-5, atol=1e-5)


def test_on_policy_targets_are_discounted_returns_whatever_the_baseline():
    # rho = c = 1 and lambda = 1: v_s is the bootstrapped discounted return, independent of V.
    _, discounts, rewards, _, bootstrap = make_unroll(seed=2)
    n_t, n_b = rewards.shape
    returns = np.zeros((n_t, n_b))
    for b in range(n_b):
        for s in range(n_t):
            g, scale = 0.0, 1.0
            for t in range(s, n_t):
                g += scale * rewards[t, b]
                scale *= discounts[t, b]
            returns[s, b] = g + scale * bootstrap[b]
    rng = np.random.default_rng(3)
    for values in (np.zeros((n_t, n_b)), rng.normal(scale=5.0, size=(n_t, n_b))):
        out = vtrace_from_importance_weights(
            _t(np.zeros((n_t, n_b))), _t(discounts), _t(rewards), _t(values), _t(bootstrap)
        )
        np.testing.assert_allclose(out.vs.numpy(), returns, rtol=1e-12, atol=1e-12)


def test_terminal_step_cuts_everything_after_it():
    log_rhos, discounts, rewards, values, bootstrap = make_unroll(seed=4)
    # Element 0 terminates at t=7: nothing from V(x_8) on, nor the bootstrap, may reach v_0..v_7.
    base = vtrace_from_importance_weights(
        _t(log_rhos), _t(discounts), _t(rewards), _t(values), _t(bootstrap), lambda_=0.8
    )
    values2, bootstrap2, rewards2 = values.copy(), bootstrap.copy(), rewards.copy()
    values2[8:, 0] += 100.0
    rewards2[8:, 0] -= 50.0
    bootstrap2[0] += 1000.0
    moved = vtrace_from_importance_weights(
        _t(log_rhos), _t(discounts), _t(rewards2), _t(values2), _t(bootstrap2), lambda_=0.8
    )
    np.testing.assert_allclose(moved.vs.numpy()[:8, 0], base.vs.numpy()[:8, 0], rtol=0, atol=1e-12)
    adv_before = base.pg_advantages.numpy()[:8, 0]
    np.testing.assert_allclose(moved.pg_advantages.numpy()[:8, 0], adv_before, atol=1e-12)
    # ...but the steps after the terminal do see the change.
    assert not np.allclose(moved.vs.numpy()[8:, 0], base.vs.numpy()[8:, 0])


def test_extra_batch_dimensions_match_the_flat_layout():
    log_rhos, discounts, rewards, values, bootstrap = make_unroll(seed=5)
    flat = vtrace_from_importance_weights(
        _t(log_rhos), _t(discounts), _t(rewards), _t(values), _t(bootstrap), lambda_=0.9
    )
    shaped = vtrace_from_importance_weights(
        *(_t(x).reshape(12, 2, 3) for x in (log_rhos, discounts, rewards, values)),
        _t(bootstrap).reshape(2, 3),
        lambda_=0.9,
    )
    np.testing.assert_allclose(shaped.vs.reshape(12, 6).numpy(), flat.vs.numpy(), atol=1e-12)
    np.testing.assert_allclose(
        shaped.pg_advantages.reshape(12, 6).numpy(), flat.pg_advantages.numpy(), atol=1e-12
    )


def test_no_gradient_flows_into_the_returns():
    log_rhos, discounts, rewards, values, bootstrap = make_unroll(seed=6)
    inputs = [_t(x).requires_grad_() for x in (log_rhos, discounts, rewards, values, bootstrap)]
    out = vtrace_from_importance_weights(*inputs)
    for name, x in (("vs", out.vs), ("pg_advantages", out.pg_advantages)):
        assert not x.requires_grad and x.grad_fn is None, name
    # A baseline loss built on them differentiates through V only: d/dV 0.5 (vs - V)^2 = V - vs.
    values_t = inputs[3]
    (0.5 * ((out.vs - values_t) ** 2).sum()).backward()
    np.testing.assert_allclose(values_t.grad.numpy(), (values_t - out.vs).detach().numpy())
    for x in (inputs[0], inputs[1], inputs[2], inputs[4]):
        assert x.grad is None


def naive_log_softmax(logits: np.ndarray) -> np.ndarray:
    out = np.zeros_like(logits)
    for idx in np.ndindex(*logits.shape[:-1]):
        row = logits[idx]
        m = max(row)
        out[idx] = row - (m + math.log(sum(math.exp(v - m) for v in row)))
    return out


@pytest.mark.parametrize("lam", [1.0, 0.6])
def test_from_logits_is_consistent_with_importance_weights_and_naive_loop(lam):
    _, discounts, rewards, values, bootstrap = make_unroll(seed=7)
    rng = np.random.default_rng(8)
    n_t, n_b, n_a = 12, 6, 4
    behaviour = rng.normal(scale=1.5, size=(n_t, n_b, n_a))
    target = rng.normal(scale=1.5, size=(n_t, n_b, n_a))
    actions = rng.integers(0, n_a, size=(n_t, n_b))
    lp_mu, lp_pi = naive_log_softmax(behaviour), naive_log_softmax(target)
    want_lp_mu = np.array([[lp_mu[t, b, actions[t, b]] for b in range(n_b)] for t in range(n_t)])
    want_lp_pi = np.array([[lp_pi[t, b, actions[t, b]] for b in range(n_b)] for t in range(n_t)])
    want_log_rhos = want_lp_pi - want_lp_mu
    assert (want_log_rhos > 0.3).sum() > 5 and (want_log_rhos < -0.3).sum() > 5

    kwargs = dict(clip_rho_threshold=1.0, clip_pg_rho_threshold=1.5, clip_c_threshold=0.9)
    got = vtrace_from_logits(
        _t(behaviour),
        _t(target),
        torch.tensor(actions),
        _t(discounts),
        _t(rewards),
        _t(values),
        _t(bootstrap),
        lambda_=lam,
        **kwargs,
    )
    np.testing.assert_allclose(got.behaviour_action_log_probs.numpy(), want_lp_mu, atol=1e-12)
    np.testing.assert_allclose(got.target_action_log_probs.detach().numpy(), want_lp_pi, atol=1e-12)
    np.testing.assert_allclose(got.log_rhos.detach().numpy(), want_log_rhos, atol=1e-12)

    from_weights = vtrace_from_importance_weights(
        _t(want_log_rhos),
        _t(discounts),
        _t(rewards),
        _t(values),
        _t(bootstrap),
        lambda_=lam,
        **kwargs,
    )
    np.testing.assert_allclose(got.vs.numpy(), from_weights.vs.numpy(), atol=1e-12)
    np.testing.assert_allclose(
        got.pg_advantages.numpy(), from_weights.pg_advantages.numpy(), atol=1e-12
    )
    want_vs, want_adv = naive_vtrace(
        want_log_rhos, discounts, rewards, values, bootstrap, 1.0, 1.5, 0.9, lam
    )
    np.testing.assert_allclose(got.vs.numpy(), want_vs, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got.pg_advantages.numpy(), want_adv, rtol=1e-10, atol=1e-10)


def test_from_logits_gradient_reaches_target_log_probs_only():
    _, discounts, rewards, values, bootstrap = make_unroll(seed=9)
    rng = np.random.default_rng(10)
    behaviour = _t(rng.normal(size=(12, 6, 3))).requires_grad_()
    target = _t(rng.normal(size=(12, 6, 3))).requires_grad_()
    actions = torch.tensor(rng.integers(0, 3, size=(12, 6)))
    out = vtrace_from_logits(
        behaviour, target, actions, _t(discounts), _t(rewards), _t(values), _t(bootstrap)
    )
    assert not out.vs.requires_grad and not out.pg_advantages.requires_grad
    assert out.target_action_log_probs.requires_grad
    # The policy-gradient term: gradient reaches the target logits, never the behaviour logits.
    (-(out.target_action_log_probs * out.pg_advantages).sum()).backward()
    assert target.grad is not None and target.grad.abs().sum() > 0
    assert behaviour.grad is None


# --- argument errors -------------------------------------------------------------------------


def _good():
    log_rhos, discounts, rewards, values, bootstrap = make_unroll(seed=11)
    return dict(
        log_rhos=_t(log_rhos[:4, :3]),
        discounts=_t(discounts[:4, :3]),
        rewards=_t(rewards[:4, :3]),
        values=_t(values[:4, :3]),
        bootstrap_value=_t(bootstrap[:3]),
    )


@pytest.mark.parametrize(
    ("field", "bad", "needle"),
    [
        ("log_rhos", torch.zeros(4, 2, dtype=torch.float64), "log_rhos has shape (4, 2)"),
        ("discounts", torch.zeros(3, 3, dtype=torch.float64), "discounts has shape (3, 3)"),
        ("rewards", torch.zeros(4, dtype=torch.float64), "rewards has shape (4,)"),
        ("bootstrap_value", torch.zeros(4, 3, dtype=torch.float64), "values.shape[1:] = (3,)"),
        ("rewards", torch.zeros(4, 3, dtype=torch.int64), "floating-point"),
        ("values", np.zeros((4, 3)), "must be a torch.Tensor"),
    ],
)
def test_bad_shapes_and_types_raise_config_error(field, bad, needle):
    args = _good()
    args[field] = bad
    with pytest.raises(ConfigError) as err:
        vtrace_from_importance_weights(**args)
    assert needle in str(err.value)


def test_empty_unroll_is_rejected():
    empty = torch.zeros(0, 3, dtype=torch.float64)
    with pytest.raises(ConfigError, match="T >= 1"):
        vtrace_from_importance_weights(empty, empty, empty, empty, torch.zeros(3))


@pytest.mark.parametrize(
    "name", ["clip_rho_threshold", "clip_pg_rho_threshold", "clip_c_threshold"]
)
@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), "1.0"])
def test_non_positive_thresholds_raise(name, bad):
    with pytest.raises(ConfigError) as err:
        vtrace_from_importance_weights(**_good(), **{name: bad})
    assert name in str(err.value) and repr(bad) in str(err.value) and "None" in str(err.value)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_lambda_outside_unit_interval_raises(bad):
    with pytest.raises(ConfigError, match=r"lambda_ must be a number in \[0, 1\]"):
        vtrace_from_importance_weights(**_good(), lambda_=bad)


def test_from_logits_rejects_bad_actions_and_logit_shapes():
    args = _good()
    del args["log_rhos"]
    logits = torch.zeros(4, 3, 5, dtype=torch.float64)
    with pytest.raises(ConfigError, match=r"action 5 is out of range; valid actions are 0\.\.4"):
        vtrace_from_logits(logits, logits, torch.full((4, 3), 5), **args)
    with pytest.raises(ConfigError, match="action -1 is out of range"):
        vtrace_from_logits(logits, logits, torch.full((4, 3), -1), **args)
    with pytest.raises(ConfigError, match="integer tensor"):
        vtrace_from_logits(logits, logits, torch.zeros(4, 3), **args)
    with pytest.raises(ConfigError, match=r"actions has shape \(4,\)"):
        vtrace_from_logits(logits, logits, torch.zeros(4, dtype=torch.long), **args)
    with pytest.raises(ConfigError, match="behaviour_logits has shape"):
        vtrace_from_logits(
            torch.zeros(4, 3, 2, dtype=torch.float64),
            logits,
            torch.zeros(4, 3, dtype=torch.long),
            **args,
        )
