"""Double-DQN targets and Huber loss against deliberately naive per-item loops."""

from __future__ import annotations

import numpy as np
import torch

from rlfleet.math import double_q_target, huber, td_errors, weighted_huber_loss


def naive_target(reward, discount, q_online, q_target, double=True):
    out = []
    for i in range(len(reward)):
        a = int(np.argmax(q_online[i] if double else q_target[i]))
        out.append(reward[i] + discount[i] * q_target[i][a])
    return np.array(out)


def test_double_q_target_matches_naive_loop():
    rng = np.random.default_rng(0)
    b, a = 64, 5
    reward = rng.normal(size=b).astype(np.float32)
    discount = rng.choice([0.0, 0.99, 0.99**3], size=b).astype(np.float32)
    q_online = rng.normal(size=(b, a)).astype(np.float32)
    q_target = rng.normal(size=(b, a)).astype(np.float32)
    for double in (True, False):
        got = double_q_target(
            torch.from_numpy(reward),
            torch.from_numpy(discount),
            torch.from_numpy(q_online),
            torch.from_numpy(q_target),
            double=double,
        ).numpy()
        want = naive_target(reward, discount, q_online, q_target, double)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_double_differs_from_plain_when_argmaxes_disagree():
    q_online = torch.tensor([[1.0, 0.0]])
    q_target = torch.tensor([[0.0, 5.0]])
    r, d = torch.tensor([0.0]), torch.tensor([1.0])
    assert double_q_target(r, d, q_online, q_target, double=True).item() == 0.0
    assert double_q_target(r, d, q_online, q_target, double=False).item() == 5.0


def test_terminated_transition_ignores_bootstrap():
    r, d = torch.tensor([2.5]), torch.tensor([0.0])
    q = torch.tensor([[100.0, -100.0]])
    assert double_q_target(r, d, q, q).item() == 2.5


def test_td_errors_and_weighted_huber_against_naive():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(32, 3)).astype(np.float32)
    actions = rng.integers(0, 3, size=32)
    target = rng.normal(scale=3.0, size=32).astype(np.float32)
    weights = rng.uniform(0.1, 1.0, size=32).astype(np.float32)
    td = td_errors(torch.from_numpy(q), torch.from_numpy(actions), torch.from_numpy(target))
    naive_td = np.array([target[i] - q[i, actions[i]] for i in range(32)])
    np.testing.assert_allclose(td.numpy(), naive_td, rtol=1e-6)

    def naive_huber(x, delta):
        return 0.5 * x * x if abs(x) <= delta else delta * (abs(x) - 0.5 * delta)

    for delta in (1.0, 0.5, 10.0):
        got = weighted_huber_loss(td, torch.from_numpy(weights), delta).item()
        want = np.mean([weights[i] * naive_huber(naive_td[i], delta) for i in range(32)])
        assert abs(got - want) < 1e-5
        np.testing.assert_allclose(
            huber(td, delta).numpy(), [naive_huber(x, delta) for x in naive_td], rtol=1e-5
        )
