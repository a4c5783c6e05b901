"""Policy heads for an environment's action space, and sampling from them while acting.

Agents with policy networks (PPO, IMPALA) build their head here, so every agent treats a
``Box`` the same way: :func:`policy_head` gives categorical logits for ``Discrete`` actions and a
:class:`~rlfleet.models.heads.GaussianHead` for a bounded ``Box``, configured by the agent's
model section (``squash``, ``log_std_init``, ``state_dependent_std``). :class:`HeadSampler` draws
actions with their log-probabilities, batched and seeded, for an actor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from rlfleet.envs.spec import EnvSpec
from rlfleet.models.heads import CategoricalHead, GaussianHead

__all__ = ["HeadSampler", "Sampled", "policy_head"]


def policy_head(env: EnvSpec, model: Any) -> Callable[[int], nn.Module]:
    """``width -> head`` for ``env``'s action space: :class:`CategoricalHead` (Discrete) or
    :class:`GaussianHead` (bounded Box; ``model.squash``, ``model.log_std_init`` and
    ``model.state_dependent_std`` configure it)."""
    if env.discrete:
        n = env.num_actions
        return lambda width: CategoricalHead(width, n)
    low, high = env.action_bounds

    def gaussian(width: int) -> nn.Module:
        return GaussianHead(
            width,
            low,
            high,
            squash=model.squash,
            state_dependent_std=model.state_dependent_std,
            log_std_init=model.log_std_init,
        )

    return gaussian


class Sampled:
    """One batch of sampled actions: ``raw`` (what messages carry: indices, or the unsquashed
    Gaussian sample), ``env`` (what the environments receive) and ``log_prob`` ``[K]``."""

    __slots__ = ("env", "log_prob", "raw")

    def __init__(self, raw: np.ndarray, env: np.ndarray, log_prob: np.ndarray) -> None:
        self.raw, self.env, self.log_prob = raw, env, log_prob


class HeadSampler:
    """Samples from a network's policy head: ``params(obs) -> [K, P]`` gives the distribution
    parameters (default: the first output of ``net(obs)``), ``net.policy`` is the head."""

    def __init__(
        self,
        net: nn.Module,
        seed: int,
        params: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.head = net.policy
        self.params = params if params is not None else (lambda obs: net(obs)[0])
        self.generator = torch.Generator().manual_seed(int(seed))

    @torch.no_grad()
    def sample(self, obs: np.ndarray) -> Sampled:
        params = self.params(torch.from_numpy(np.ascontiguousarray(obs)))
        raw = self.head.sample(params, self.generator)
        log_prob = self.head.log_prob(params, raw)
        env = self.head.to_env(raw)
        dtype = self.head.action_dtype
        return Sampled(
            raw.numpy().astype(dtype, copy=False),
            env.numpy().astype(dtype, copy=False),
            log_prob.numpy().astype(np.float32, copy=False),
        )
