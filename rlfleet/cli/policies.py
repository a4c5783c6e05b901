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


def load_greedy_policy(path: str) -> Callable[[np.ndarray], Any]:
    """Greedy policy of a checkpoint, as its agent defines it (``spec.make_eval_policy``: the
    argmax of Q-values or policy logits; a Gaussian policy's mean, squashed or clipped into
    the action bounds); the network is rebuilt from the saved config."""
    from rlfleet.agents.common.networks import eval_policy, load_network

    loaded = load_network(Path(path))
    policy = GreedyPolicy(eval_policy(loaded.config, loaded.env, loaded.net, seed=0))
    # what the policy was trained in: episode runners that build their own environment (netsim
    # eval) take its observation and transport settings from here
    policy.env_kwargs = dict(loaded.config.env.kwargs or {})
    return policy


class GreedyPolicy:
    """``policy(obs) -> action`` for one environment (an int for Discrete actions, an array
    for Box actions); ``reset()`` before each episode."""

    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self.env_kwargs: dict[str, Any] = {}

    def __call__(self, obs: np.ndarray) -> Any:
        action = self.policy.act(np.asarray(obs)[None], np.zeros(1))[0]
        return int(action) if np.ndim(action) == 0 else action

    def reset(self) -> None:
        """Start a new episode (clears an LSTM core's state; nothing for feed-forward nets)."""
        self.policy.reset(None)
