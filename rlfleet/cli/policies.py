"""Turn a checkpoint (or run folder) into a greedy policy callable: observation -> action.

A policy from a network with an LSTM core remembers the episode so far; it has a ``reset()``
method, which episode runners (``rlfleet record``, ``rlfleet netsim eval``) call before each
episode. Scripted policies need none.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def load_greedy_policy(path: str) -> Callable[[np.ndarray], int]:
    """Greedy policy of an Ape-X or IMPALA checkpoint (argmax of Q-values or policy logits);
    the network is rebuilt from the saved config."""
    from rlfleet.agents.common.networks import load_network

    scores = load_network(Path(path)).scores()
    return GreedyPolicy(scores)


class GreedyPolicy:
    """``policy(obs) -> action`` for one environment; ``reset()`` before each episode."""

    def __init__(self, scores: Any) -> None:
        self.scores = scores

    def __call__(self, obs: np.ndarray) -> int:
        import torch

        with torch.no_grad():
            return int(self.scores(torch.as_tensor(np.asarray(obs)[None])).argmax(dim=1).item())

    def reset(self) -> None:
        """Start a new episode (clears an LSTM core's state; nothing for feed-forward nets)."""
        self.scores.reset(None)
