"""The DDPG / TD3 update: the target against a naive computation, the critic loss, delayed actor
updates, Polyak-averaged targets, and each TD3 switch doing what it says."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlfleet.agents.dpg.network import DPGNetwork
from rlfleet.agents.dpg.update import DPGUpdate
from rlfleet.math import smoothed_target_action

LOW, HIGH = np.array([-2.0, -1.0], np.float32), np.array([2.0, 1.0], np.float32)


def _batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "obs": torch.from_numpy(rng.normal(size=(n, 3)).astype(np.float32)),
        "action": torch.from_numpy(rng.uniform(LOW, HIGH, size=(n, 2)).astype(np.float32)),
        "reward": torch.from_numpy(rng.normal(size=n).astype(np.float32)),
        "discount": torch.from_numpy(rng.choice([0.0, 0.99], size=n).astype(np.float32)),
        "next_obs": torch.from_numpy(rng.normal(size=(n, 3)).astype(np.float32)),
    }


def _update(critics=2, **kw):
    torch.manual_seed(0)
    net = DPGNetwork(3, LOW, HIGH, hidden=(16,), critics=critics)
    args = dict(actor_lr=1e-3, critic_lr=1e-3, tau=0.1, policy_delay=2, seed=0)
    return DPGUpdate(net, **{**args, **kw})


def test_target_without_smoothing_is_the_naive_min_of_target_critics():
    up = _update(target_noise=0.0)
    batch = _batch()
    got = up.target(batch)
    t = up.target_net
    with torch.no_grad():
        for i in range(8):
            s2 = batch["next_obs"][i : i + 1]
            a2 = t.center + t.half_range * torch.tanh(t.actor(s2))
            qs = [float(c(torch.cat([s2, a2], 1))) for c in t.critics]
            want = float(batch["reward"][i]) + float(batch["discount"][i]) * min(qs)
            assert float(got[i]) == pytest.approx(want, rel=1e-5, abs=1e-6)


def test_smoothing_moves_the_target_action_within_its_clip():
    plain, smooth = _update(target_noise=0.0), _update(target_noise=0.5, target_noise_clip=0.1)
    batch = _batch()
    assert not torch.allclose(plain.target(batch), smooth.target(batch))
    # the clip bounds how far the smoothed action can move: 0.1 of the half-range
    t = smooth.target_net
    with torch.no_grad():
        mu = t(batch["next_obs"])
        for _ in range(3):
            eps = torch.randn(mu.shape) * 10
            a = smoothed_target_action(mu, eps, smooth.noise_clip, t.low, t.high)
            assert ((a - mu).abs() <= 0.1 * t.half_range + 1e-6).all()


def test_delayed_actor_and_polyak_targets():
    up = _update(target_noise=0.0)
    actor0 = [p.clone() for p in up.net.actor.parameters()]
    target0 = [p.clone() for p in up.target_net.parameters()]
    out = up.step(_batch(), torch.ones(8))
    assert "actor_loss" not in out and out["abs_td"].shape == (8,)
    for p, p0 in zip(up.net.actor.parameters(), actor0, strict=True):
        torch.testing.assert_close(p, p0)  # the actor waits for every 2nd update
    for p, p0 in zip(up.target_net.parameters(), target0, strict=True):
        torch.testing.assert_close(p, p0)  # and so do the targets
    out = up.step(_batch(seed=1), torch.ones(8))
    assert "actor_loss" in out
    assert any(
        not torch.equal(p, p0) for p, p0 in zip(up.net.actor.parameters(), actor0, strict=True)
    )
    for t, t0, o in zip(up.target_net.parameters(), target0, up.net.parameters(), strict=True):
        torch.testing.assert_close(t, 0.9 * t0 + 0.1 * o)


def test_critic_loss_is_the_weighted_squared_td_summed_over_critics():
    up = _update(target_noise=0.0)
    batch, weights = _batch(), torch.linspace(0.1, 1.0, 8)
    with torch.no_grad():
        y = up.target(batch)
        qs = up.net.q(batch["obs"], batch["action"])
    out = up.step(batch, weights)
    want = sum(float((weights * (y - qs[c]) ** 2).mean()) for c in range(2))
    assert out["loss"] == pytest.approx(want, rel=1e-5)
    np.testing.assert_allclose(out["abs_td"], (y - qs[0]).abs().numpy(), rtol=1e-5)


def test_one_critic_is_ddpg():
    up = _update(critics=1, target_noise=0.0, policy_delay=1)
    assert len(up.net.critics) == 1
    out = up.step(_batch(), torch.ones(8))
    assert "actor_loss" in out  # no delay: the actor steps with every critic step


def test_optimizer_pair_round_trips():
    up = _update()
    up.step(_batch(), torch.ones(8))
    up.step(_batch(seed=1), torch.ones(8))
    state = up.optimizer.state_dict()
    other = _update()
    other.optimizer.load_state_dict(state)
    assert other.optimizer.state_dict()["critic"]["state"][0]["step"] == 2
    assert other.optimizer.state_dict()["actor"]["state"][0]["step"] == 1
