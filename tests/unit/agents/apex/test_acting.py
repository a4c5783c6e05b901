"""Ape-X acting: per-explorer epsilons and actor-side initial priorities."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlfleet.agents.apex.acting import actor_epsilons, apex_epsilons, initial_priorities
from rlfleet.cli.presets import build_config
from rlfleet.models import build_q_network


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
    rng = np.random.default_rng(0)
    batch = {
        "obs": rng.normal(size=(10, 4)).astype(np.float32),
        "action": rng.integers(0, 3, size=10),
        "reward": rng.normal(size=10).astype(np.float32),
        "discount": rng.choice([0.0, 0.97], size=10).astype(np.float32),
        "next_obs": rng.normal(size=(10, 4)).astype(np.float32),
    }
    got = initial_priorities(net, batch)
    with torch.no_grad():
        for i in range(10):
            q = net(torch.from_numpy(batch["obs"][i : i + 1]))[0]
            nq = net(torch.from_numpy(batch["next_obs"][i : i + 1]))[0]
            target = batch["reward"][i] + batch["discount"][i] * nq[int(nq.argmax())]
            assert got[i] == pytest.approx(
                abs(float(target - q[batch["action"][i]])), rel=1e-4, abs=1e-5
            )
