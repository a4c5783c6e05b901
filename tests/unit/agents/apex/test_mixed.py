"""Ape-X DQfD's mixed batches: exactly the expert share, rows from the right replay."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest

from rlfleet.agents.apex.mixed import sample_mixed, update_mixed_priorities
from rlfleet.replay import PrioritizedReplay
from rlfleet.replay.demos import demo_fields


def _replay(marker: float, size: int) -> PrioritizedReplay:
    rep = PrioritizedReplay(size + 1, demo_fields((2,), np.float32), reserved=size, seed=3)
    rep.add_reserved(
        {
            "obs": np.full((size, 2), marker, np.float32),
            "action": np.zeros(size, np.int64),
            "reward": np.zeros(size, np.float32),
            "discount": np.ones(size, np.float32),
            "next_obs": np.zeros((size, 2), np.float32),
            "reward_1": np.zeros(size, np.float32),
            "discount_1": np.ones(size, np.float32),
            "next_obs_1": np.zeros((size, 2), np.float32),
            "is_demo": np.full(size, marker > 0),
            "imitate": np.full(size, marker > 0),
            "episode": np.zeros(size, np.int64),
        }
    )
    return rep


@pytest.mark.parametrize("fraction", [0.25, 0.35, 0.5, 0.1])
def test_mixed_batch_is_exactly_at_the_ratio(fraction: float) -> None:
    agent, expert = _replay(-1.0, 300), _replay(1.0, 300)
    for batch_size in (1, 2, 3, 4, 7, 10, 32, 64, 100, 256):
        want = int((Decimal(batch_size) * Decimal(repr(fraction))).quantize(0, ROUND_HALF_UP))
        mixed = sample_mixed(agent, expert, batch_size, beta=0.4, expert_fraction=fraction)
        f = mixed.fields
        assert mixed.n_expert == want and mixed.n_agent == batch_size - want
        assert len(f["obs"]) == len(mixed.weights) == batch_size
        assert int(f["is_demo"].sum()) == want
        # Rows come from the right replay, agent rows first.
        np.testing.assert_array_equal(f["obs"][:, 0] > 0, f["is_demo"])
        assert not f["is_demo"][: batch_size - want].any()
    update_mixed_priorities(mixed, np.full(batch_size, 5.0), agent, expert)
    assert agent.max_priority == pytest.approx(5.0 + 1e-6)
