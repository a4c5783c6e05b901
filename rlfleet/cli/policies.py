"""Turn a checkpoint (or run folder) into a greedy policy callable: observation -> action."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np


def load_greedy_policy(path: str) -> Callable[[np.ndarray], int]:
    """Greedy policy of an Ape-X or IMPALA checkpoint (argmax of Q-values or policy logits);
    the network is rebuilt from the saved config."""
    import torch

    from rlfleet.runtime.policy_nets import load_network

    scores = load_network(Path(path)).scores()

    @torch.no_grad()
    def policy(obs: np.ndarray) -> int:
        return int(scores(torch.as_tensor(np.asarray(obs)[None])).argmax(dim=1).item())

    return policy
