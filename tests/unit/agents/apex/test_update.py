"""The Ape-X update: target-network sync."""

from __future__ import annotations

import torch

from rlfleet.agents.apex.update import DQNUpdate
from rlfleet.models import build_q_network


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
