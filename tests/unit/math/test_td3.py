"""TD3 / DDPG math against naive per-element computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlfleet.math import exploration_ladder, polyak_update_, smoothed_target_action, td3_target


def test_td3_target_takes_the_minimum_of_the_critics():
    rng = np.random.default_rng(0)
    b = 7
    reward = rng.normal(size=b).astype(np.float32)
    discount = rng.choice([0.0, 0.97**3], size=b).astype(np.float32)
    next_q = rng.normal(size=(2, b)).astype(np.float32)
    got = td3_target(torch.from_numpy(reward), torch.from_numpy(discount), torch.from_numpy(next_q))
    for i in range(b):
        smaller = next_q[0, i] if next_q[0, i] < next_q[1, i] else next_q[1, i]
        assert float(got[i]) == pytest.approx(reward[i] + discount[i] * smaller, rel=1e-6)
    # one critic: DDPG's target; a terminal (discount 0) bootstraps nothing
    one = td3_target(
        torch.from_numpy(reward), torch.from_numpy(discount), torch.from_numpy(next_q[:1])
    )
    for i in range(b):
        assert float(one[i]) == pytest.approx(reward[i] + discount[i] * next_q[0, i], rel=1e-6)
        if discount[i] == 0:
            assert float(one[i]) == pytest.approx(reward[i])


def test_td3_target_refuses_a_wrong_shape():
    with pytest.raises(ValueError, match=r"\[C, B\]"):
        td3_target(torch.zeros(3), torch.zeros(3), torch.zeros(3))


def test_smoothed_target_action_clips_the_noise_then_the_action():
    rng = np.random.default_rng(1)
    b, d = 9, 2
    low, high = np.array([-2.0, -1.0], np.float32), np.array([2.0, 0.5], np.float32)
    action = rng.uniform(low, high, size=(b, d)).astype(np.float32)
    noise = rng.normal(scale=1.0, size=(b, d)).astype(np.float32)
    clip = np.array([0.5, 0.2], np.float32)
    got = smoothed_target_action(
        torch.from_numpy(action),
        torch.from_numpy(noise),
        torch.from_numpy(clip),
        torch.from_numpy(low),
        torch.from_numpy(high),
    ).numpy()
    for i in range(b):
        for j in range(d):
            eps = min(max(noise[i, j], -clip[j]), clip[j])
            want = min(max(action[i, j] + eps, low[j]), high[j])
            assert got[i, j] == pytest.approx(want, abs=1e-6)


def test_polyak_update_matches_the_naive_average():
    torch.manual_seed(0)
    online = [torch.randn(3, 4), torch.randn(5)]
    target = [torch.randn(3, 4), torch.randn(5)]
    before = [t.clone() for t in target]
    polyak_update_(target, online, 0.1)
    for t, b, o in zip(target, before, online, strict=True):
        naive = b.clone()
        for idx in np.ndindex(*b.shape):
            naive[idx] = 0.9 * b[idx] + 0.1 * o[idx]
        torch.testing.assert_close(t, naive)
    polyak_update_(target, online, 1.0)  # tau = 1 is a hard copy
    for t, o in zip(target, online, strict=True):
        torch.testing.assert_close(t, o)
    with pytest.raises(ValueError, match="tau"):
        polyak_update_(target, online, 1.5)
    with pytest.raises(ValueError, match="1 target tensors for 2"):
        polyak_update_(target[:1], online, 0.1)


def test_exploration_ladder_is_ape_x_s_formula():
    got = exploration_ladder(5, 0.3, 2.0)
    for i in range(5):
        assert got[i] == pytest.approx(0.3 ** (1 + 2.0 * i / 4))
    assert exploration_ladder(1, 0.3, 2.0).tolist() == [0.3]
    assert exploration_ladder(4, 0.3, 0.0).tolist() == [pytest.approx(0.3)] * 4
