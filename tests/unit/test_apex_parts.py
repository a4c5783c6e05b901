"""Ape-X pieces: per-explorer epsilons, actor-side priorities, flat parameters, replay fields."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlfleet.algorithms.dqn import DQNUpdate, EpsilonGreedyPolicy, apex_epsilons
from rlfleet.algorithms.params import flatten_into, layout_signature, load_flat, param_count
from rlfleet.cli.presets import build_config
from rlfleet.errors import TransportError
from rlfleet.models import build_q_network
from rlfleet.replay import FieldSpec, FrameStackSpec
from rlfleet.runtime.actor import actor_epsilons
from rlfleet.runtime.apex_config import ApexConfig
from rlfleet.runtime.stores import agent_fields


def test_apex_epsilons_follow_the_paper_formula():
    eps = apex_epsilons(8)
    for i in range(8):
        assert eps[i] == pytest.approx(0.4 ** (1 + 7 * i / 7))
    assert eps[0] == pytest.approx(0.4) and eps[-1] == pytest.approx(0.4**8)
    assert apex_epsilons(1).tolist() == [0.4]


def test_actor_epsilons_per_actor_and_per_env():
    per_actor = build_config("cartpole", ["actor.epsilon_per=actor", "env.envs_per_actor=4"])
    assert actor_epsilons(per_actor, 2, 3).tolist() == [pytest.approx(0.4**8)] * 4
    per_env = build_config("cartpole", ["actor.epsilon_per=env", "env.envs_per_actor=4"])
    fleet = np.concatenate([actor_epsilons(per_env, i, 3) for i in range(3)])
    np.testing.assert_allclose(fleet, apex_epsilons(12))


def test_initial_priorities_match_a_naive_double_dqn_loop():
    torch.manual_seed(0)
    net = build_q_network((4,), 3, hidden=(16,), dueling=True)
    policy = EpsilonGreedyPolicy(net, 3, seed=0)
    rng = np.random.default_rng(0)
    batch = {
        "obs": rng.normal(size=(10, 4)).astype(np.float32),
        "action": rng.integers(0, 3, size=10),
        "reward": rng.normal(size=10).astype(np.float32),
        "discount": rng.choice([0.0, 0.97], size=10).astype(np.float32),
        "next_obs": rng.normal(size=(10, 4)).astype(np.float32),
    }
    got = policy.initial_priorities(batch)
    with torch.no_grad():
        for i in range(10):
            q = net(torch.from_numpy(batch["obs"][i : i + 1]))[0]
            nq = net(torch.from_numpy(batch["next_obs"][i : i + 1]))[0]
            target = batch["reward"][i] + batch["discount"][i] * nq[int(nq.argmax())]
            assert got[i] == pytest.approx(
                abs(float(target - q[batch["action"][i]])), rel=1e-4, abs=1e-5
            )


def test_greedy_and_random_actions():
    net = build_q_network((4,), 2, hidden=(8,))
    policy = EpsilonGreedyPolicy(net, 2, seed=1)
    obs = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
    with torch.no_grad():
        greedy = net(torch.from_numpy(obs)).argmax(1).numpy()
    assert (policy.act(obs, np.zeros(200)) == greedy).all()
    random = policy.act(obs, np.ones(200))
    assert 60 < (random == 0).sum() < 140  # fair coin on 200 draws


def test_flat_parameters_round_trip_and_guard_the_layout():
    a = build_q_network((4,), 2, hidden=(8, 8))
    b = build_q_network((4,), 2, hidden=(8, 8))
    flat = flatten_into(a, np.empty(param_count(a), np.float32))
    load_flat(b, flat)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    other = build_q_network((4,), 2, hidden=(9,))
    assert layout_signature(a) == layout_signature(b) != layout_signature(other)
    with pytest.raises(TransportError, match="shape"):
        load_flat(other, flat)


def test_target_network_syncs_every_t_updates():
    net = build_q_network((4,), 2, hidden=(8,))
    update = DQNUpdate(net, lr=0.1, adam_eps=1e-8, grad_clip=10, target_update_interval=3)
    batch = {
        "obs": torch.randn(16, 4),
        "next_obs": torch.randn(16, 4),
        "action": torch.randint(0, 2, (16,)),
        "reward": torch.ones(16),
        "discount": torch.full((16,), 0.9),
    }

    def same():
        return all(
            torch.equal(p, q)
            for p, q in zip(net.parameters(), update.target_net.parameters(), strict=True)
        )

    update.step(batch, torch.ones(16))
    assert not same()
    update.step(batch, torch.ones(16))
    update.step(batch, torch.ones(16))
    assert same()


def test_replay_fields_store_atari_frames_once_and_vectors_plainly():
    c = ApexConfig()
    assert isinstance(agent_fields(c, (4, 84, 84), np.dtype(np.uint8))["obs"], FrameStackSpec)
    assert isinstance(agent_fields(c, (4,), np.dtype(np.float32))["obs"], FieldSpec)
    assert isinstance(agent_fields(c, (4, 10, 10), np.dtype(np.uint8))["obs"], FieldSpec)
