"""Networks as greedy policies: epsilon-greedy acting on scores."""

from __future__ import annotations

import numpy as np
import torch

from rlfleet.agents.common.networks import EpsilonGreedy
from rlfleet.models import build_q_network


def test_greedy_and_random_actions():
    net = build_q_network((4,), 2, hidden=(8,))
    policy = EpsilonGreedy(net, 2, seed=1)
    obs = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
    with torch.no_grad():
        greedy = net(torch.from_numpy(obs)).argmax(1).numpy()
    assert (policy.act(obs, np.zeros(200)) == greedy).all()
    random = policy.act(obs, np.ones(200))
    assert 60 < (random == 0).sum() < 140  # fair coin on 200 draws
