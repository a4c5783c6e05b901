"""An actor-critic network for PPO: ``obs -> (policy params [B, P], value [B])``.

The policy and the value function have separate torsos by default (as in the PPO paper's MuJoCo
setup and Stable-Baselines3's ``MlpPolicy``), or share one (``shared=True``). Observation
normalisation, when on, sits in front of both, once (its statistics travel with the parameters:
:mod:`rlfleet.models.normalize`). Orthogonal initialisation (gain sqrt(2) in the torsos, 0.01 on
the policy's output, 1 on the value's) is the baselines / SB3 default for PPO.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from rlfleet.models.networks import build_torso
from rlfleet.models.normalize import ObsNormalizer

__all__ = ["ActorCriticNetwork", "build_actor_critic", "orthogonal_init"]


class ActorCriticNetwork(nn.Module):
    """``forward(obs) -> (params, value)``; :meth:`policy_params` skips the value function
    (what actors need). ``policy`` is the head (:mod:`rlfleet.models.heads`)."""

    def __init__(
        self,
        policy_torso: nn.Module,
        head: nn.Module,
        value_torso: nn.Module | None = None,
        normalizer: ObsNormalizer | None = None,
    ) -> None:
        super().__init__()
        self.normalizer = normalizer
        self.policy_torso = policy_torso
        self.policy = head
        self.value_torso = value_torso
        width = (value_torso or policy_torso).out_features
        self.value = nn.Linear(width, 1)

    def _input(self, obs: torch.Tensor) -> torch.Tensor:
        if self.normalizer is None:
            return obs
        x = obs.float().mul_(1.0 / 255.0) if obs.dtype == torch.uint8 else obs.float()
        return self.normalizer(x)

    def policy_params(self, obs: torch.Tensor) -> torch.Tensor:
        """Distribution parameters ``[B, P]`` only."""
        return self.policy(self.policy_torso(self._input(obs)))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._input(obs)
        features = self.policy_torso(x)
        value_features = features if self.value_torso is None else self.value_torso(x)
        return self.policy(features), self.value(value_features).squeeze(-1)


def orthogonal_init(net: ActorCriticNetwork, policy_gain: float = 0.01) -> None:
    """Orthogonal weights and zero biases: gain sqrt(2) in the torsos, ``policy_gain`` on the
    head's layers, 1 on the value layer."""

    def init(module: nn.Module, gain: float) -> None:
        for layer in module.modules():
            if isinstance(layer, nn.Linear | nn.Conv2d):
                nn.init.orthogonal_(layer.weight, gain)
                nn.init.zeros_(layer.bias)

    for torso in (net.policy_torso, net.value_torso):
        if torso is not None:
            init(torso, math.sqrt(2.0))
    mean = getattr(net.policy, "mean", None)
    init(mean if isinstance(mean, nn.Module) else net.policy, policy_gain)
    init(net.value, 1.0)


def build_actor_critic(
    obs_shape: tuple[int, ...],
    head: Callable[[int], nn.Module],
    *,
    torso: str = "auto",
    hidden: tuple[int, ...] = (64, 64),
    activation: str = "tanh",
    shared: bool = False,
    normalize_obs: bool = False,
    ortho_init: bool = True,
) -> ActorCriticNetwork:
    """An :class:`ActorCriticNetwork`; ``head(width)`` builds the policy head on the policy
    torso's features (:class:`~rlfleet.models.heads.CategoricalHead` or
    :class:`~rlfleet.models.heads.GaussianHead`)."""
    policy_torso = build_torso(obs_shape, torso, hidden, activation=activation)
    value_torso = None if shared else build_torso(obs_shape, torso, hidden, activation=activation)
    normalizer = ObsNormalizer(tuple(obs_shape)) if normalize_obs else None
    net = ActorCriticNetwork(policy_torso, head(policy_torso.out_features), value_torso, normalizer)
    if ortho_init:
        orthogonal_init(net)
    return net
