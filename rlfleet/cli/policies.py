"""Turn a checkpoint (or run folder) into a policy callable, observation -> action: greedy, or
sampling from the policy as the actors did.

A policy from a network with an LSTM core remembers the episode so far; it has a ``reset()``
method, which episode runners (``rlfleet record``, ``rlfleet netsim eval``) call before each
episode. Scripted policies need none.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def load_sampling_policy(path: str, seed: int = 0) -> Callable[[np.ndarray], Any]:
    """A checkpoint's policy that samples its actions from the policy's distribution, as the
    actors did in training (IMPALA, PPO; seeded once by ``seed``); ``env_kwargs`` as
    :func:`load_greedy_policy`. A greedy-only agent (Ape-X) is refused with a ConfigError."""
    from rlfleet.agents.common.networks import load_network
    from rlfleet.api.policy import Policy

    loaded = load_network(Path(path))
    policy = Policy(loaded, deterministic=False, seed=seed)
    policy.env_kwargs = dict(loaded.config.env.kwargs or {})
    return policy


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
