"""The network an Ape-X DPG run learns, publishes, acts with and evaluates: a deterministic
actor ``mu(s)`` and one or two critics ``Q_c(s, a)`` in one module.

Actors need the critics too (they compute the initial priorities ``|y - Q(s, a)|`` of their own
transitions), so the whole module is published. The actor's output is ``tanh`` scaled into the
Box bounds, so every action it produces is valid; replay stores actions in env units.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from rlfleet.envs.spec import EnvSpec
from rlfleet.models import ObsNormalizer


def mlp(inputs: int, hidden: tuple[int, ...], outputs: int) -> nn.Sequential:
    """``Linear -> ReLU`` per hidden size, then a linear output layer."""
    layers: list[nn.Module] = []
    width = inputs
    for h in hidden:
        layers += [nn.Linear(width, int(h)), nn.ReLU()]
        width = int(h)
    layers.append(nn.Linear(width, outputs))
    return nn.Sequential(*layers)


class DPGNetwork(nn.Module):
    """``forward(obs) -> mu(obs)`` in env units; :meth:`q` gives every critic's value.

    With ``normalize_obs`` one :class:`~rlfleet.models.ObsNormalizer` feeds both the actor and
    the critics (its statistics are parameters without gradients: published with the weights).
    """

    def __init__(
        self,
        obs_dim: int,
        low: np.ndarray,
        high: np.ndarray,
        hidden: tuple[int, ...] = (256, 256),
        critics: int = 2,
        normalize_obs: bool = False,
    ) -> None:
        super().__init__()
        low32, high32 = np.asarray(low, np.float32), np.asarray(high, np.float32)
        action_dim = int(low32.shape[0])
        self.normalizer = ObsNormalizer((obs_dim,)) if normalize_obs else None
        self.actor = mlp(obs_dim, hidden, action_dim)
        self.critics = nn.ModuleList(
            mlp(obs_dim + action_dim, hidden, 1) for _ in range(int(critics))
        )
        # derived from the env: not saved, rebuilt with the network
        self.register_buffer("low", torch.from_numpy(low32), persistent=False)
        self.register_buffer("high", torch.from_numpy(high32), persistent=False)
        self.register_buffer("center", torch.from_numpy((high32 + low32) / 2), persistent=False)
        self.register_buffer("half_range", torch.from_numpy((high32 - low32) / 2), persistent=False)

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.float()
        return self.normalizer(x) if self.normalizer is not None else x

    def act(self, x: torch.Tensor) -> torch.Tensor:
        """``mu`` of already normalised features ``x``."""
        return self.center + self.half_range * torch.tanh(self.actor(x))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.act(self.features(obs))

    def q_features(self, x: torch.Tensor, action: torch.Tensor, count: int = 0) -> torch.Tensor:
        """``[C, B]`` values of the first ``count`` critics (0 = all) at features ``x``."""
        xa = torch.cat([x, action], dim=-1)
        critics = self.critics if count == 0 else self.critics[:count]
        return torch.stack([c(xa).squeeze(-1) for c in critics])

    def q(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``[C, B]``: every critic's ``Q_c(obs, action)``."""
        return self.q_features(self.features(obs), action)


def build_network(config: Any, env: EnvSpec) -> DPGNetwork:
    """The config's actor and critic(s) for ``env`` (1-D observations, a bounded Box)."""
    low, high = env.action_bounds
    return DPGNetwork(
        int(np.prod(env.obs_shape)),
        low,
        high,
        hidden=tuple(config.model.hidden),
        critics=2 if config.algo.twin_critics else 1,
        normalize_obs=config.env.normalize_obs,
    )


class DeterministicPolicy:
    """The greedy policy of the evaluator and checkpoints: ``mu(obs)``, no noise."""

    def __init__(self, net: nn.Module) -> None:
        self.net = net

    @torch.inference_mode()
    def act(self, obs: np.ndarray, epsilons: np.ndarray) -> np.ndarray:
        return self.net(torch.from_numpy(np.asarray(obs))).numpy()

    def reset(self, done: np.ndarray | None = None) -> None:
        return None  # feed-forward: nothing to forget
