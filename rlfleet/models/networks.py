"""Q-networks and policy-value networks: a torso (MLP, MinAtar CNN, Nature CNN) plus a head.

Inputs may be float32 or uint8; uint8 is scaled by 1/255 inside the network, so image
observations travel and sit in replay as bytes (MinAtar observations are 0/255 for that reason,
see :mod:`rlfleet.envs.minatar`).

Torsos:

* ``"mlp"``: vector observations; ``hidden`` Linear + ReLU layers.
* ``"minatar"``: the MinAtar paper's network (Young & Tian 2019): Conv(C->16, 3x3, stride 1) + ReLU,
  then Linear(16*H*W -> 128) + ReLU, for [C, 10, 10].
* ``"nature"``: the Nature DQN network (Mnih et al. 2015): Conv 32 8x8/4, Conv 64 4x4/2,
  Conv 64 3x3/1 (ReLU each), Linear(-> 512) + ReLU, for [4, 84, 84].
* ``"auto"``: 1-D -> mlp; C x 10 x 10 -> minatar; C x 84 x 84 -> nature.

``hidden`` sizes (and ``activation``: relu or tanh) apply to the MLP torso only; the CNN torsos
keep their papers' sizes. ``normalize_obs`` puts an :class:`~rlfleet.models.normalize.ObsNormalizer`
in front of the torso (running mean/std, updated by the learner, published with the parameters).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from rlfleet.errors import ConfigError
from rlfleet.models.heads import CategoricalHead
from rlfleet.models.names import ACTIVATIONS, CORES, TORSOS
from rlfleet.models.normalize import ObsNormalizer
from rlfleet.models.recurrent import LSTMPolicyValueNetwork

__all__ = [
    "TORSOS",
    "DuelingHead",
    "PolicyValueNetwork",
    "QNetwork",
    "build_policy_value_network",
    "build_q_network",
    "build_torso",
    "resolve_torso",
]


def resolve_torso(obs_shape: tuple[int, ...], torso: str = "auto") -> str:
    """The concrete torso name for ``obs_shape`` (``torso`` unless it is "auto")."""
    if torso not in TORSOS:
        raise ConfigError(f"unknown torso {torso!r}; valid torsos: {', '.join(TORSOS)}")
    if torso != "auto":
        return torso
    shape = tuple(obs_shape)
    if len(shape) == 1:
        return "mlp"
    if len(shape) == 3 and shape[1:] == (10, 10):
        return "minatar"
    if len(shape) == 3 and shape[1:] == (84, 84):
        return "nature"
    raise ConfigError(
        f"torso='auto' cannot pick a network for observations of shape {shape}: it knows "
        "1-D vectors (mlp), [C, 10, 10] (minatar) and [C, 84, 84] (nature); pass torso= one of "
        f"{', '.join(TORSOS[1:])}"
    )


class _Torso(nn.Module):
    """Scales uint8 input to [0, 1], normalises it when it has a ``normalizer``, then runs
    ``body``; ``out_features`` is its output size."""

    def __init__(
        self, body: nn.Module, out_features: int, normalizer: ObsNormalizer | None = None
    ) -> None:
        super().__init__()
        self.body = body
        self.out_features = out_features
        self.normalizer = normalizer

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if obs.dtype == torch.uint8:
            x = obs.float().mul_(1.0 / 255.0)
        else:
            x = obs.float()
        if self.normalizer is not None:
            x = self.normalizer(x)
        return self.body(x)


def _conv_out(body: nn.Module, obs_shape: tuple[int, ...]) -> int:
    with torch.no_grad():
        return int(body(torch.zeros(1, *obs_shape)).shape[1])


def build_torso(
    obs_shape: tuple[int, ...],
    torso: str = "auto",
    hidden: tuple[int, ...] = (256, 256),
    *,
    activation: str = "relu",
    normalize_obs: bool = False,
) -> _Torso:
    """The feature extractor for ``obs_shape``; raises ConfigError for a bad name or shape."""
    obs_shape = tuple(int(d) for d in obs_shape)
    name = resolve_torso(obs_shape, torso)
    if activation not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}")
    normalizer = ObsNormalizer(obs_shape) if normalize_obs else None
    if name == "mlp":
        if len(obs_shape) != 1:
            raise ConfigError(f"torso 'mlp' needs 1-D observations, got shape {obs_shape}")
        if not hidden or any(int(h) < 1 for h in hidden):
            raise ConfigError(f"hidden must be a non-empty tuple of positive sizes, got {hidden!r}")
        layers: list[nn.Module] = []
        width = obs_shape[0]
        act = nn.Tanh if activation == "tanh" else nn.ReLU
        for h in hidden:
            layers += [nn.Linear(width, int(h)), act()]
            width = int(h)
        return _Torso(nn.Sequential(*layers), width, normalizer)
    if len(obs_shape) != 3:
        raise ConfigError(f"torso {name!r} needs [C, H, W] observations, got shape {obs_shape}")
    c = obs_shape[0]
    if name == "minatar":
        convs = nn.Sequential(nn.Conv2d(c, 16, 3, stride=1), nn.ReLU(), nn.Flatten())
        flat, fc = _conv_out(convs, obs_shape), 128
    else:  # nature
        convs = nn.Sequential(
            nn.Conv2d(c, 32, 8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        flat, fc = _conv_out(convs, obs_shape), 512
    return _Torso(nn.Sequential(convs, nn.Linear(flat, fc), nn.ReLU()), fc, normalizer)


class DuelingHead(nn.Module):
    """Q(s, a) = V(s) + A(s, a) - mean_a A(s, a) (Wang et al. 2016)."""

    def __init__(self, in_features: int, num_actions: int) -> None:
        super().__init__()
        self.value = nn.Linear(in_features, 1)
        self.advantage = nn.Linear(in_features, num_actions)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        adv = self.advantage(features)
        return self.value(features) + adv - adv.mean(dim=1, keepdim=True)


class QNetwork(nn.Module):
    """torso -> head; ``forward(obs)`` returns Q-values [B, num_actions]."""

    def __init__(self, torso: nn.Module, head: nn.Module, num_actions: int) -> None:
        super().__init__()
        self.torso = torso
        self.head = head
        self.num_actions = num_actions

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.torso(obs))


class PolicyValueNetwork(nn.Module):
    """torso -> (policy params [B, P], state value [B]) for actor-critic methods (IMPALA).

    The policy layer is a head (:mod:`rlfleet.models.heads`): categorical logits by default
    (``P = A``), or the given ``head`` (a Gaussian over a Box's actions)."""

    def __init__(self, torso: _Torso, num_actions: int, head: nn.Module | None = None) -> None:
        super().__init__()
        self.torso = torso
        self.policy = head if head is not None else CategoricalHead(torso.out_features, num_actions)
        self.value = nn.Linear(torso.out_features, 1)
        self.num_actions = num_actions

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.torso(obs)
        return self.policy(features), self.value(features).squeeze(-1)


def _check_actions(num_actions: int) -> int:
    if isinstance(num_actions, bool) or int(num_actions) != num_actions or num_actions < 1:
        raise ConfigError(f"num_actions must be an integer >= 1, got {num_actions!r}")
    return int(num_actions)


def build_q_network(
    obs_shape: tuple[int, ...],
    num_actions: int,
    *,
    torso: str = "auto",
    hidden: tuple[int, ...] = (256, 256),
    dueling: bool = True,
    normalize_obs: bool = False,
) -> QNetwork:
    """A Q-network for ``obs_shape`` with a dueling (default) or plain linear head.

    Args:
        obs_shape: shape of one observation, e.g. (4,), (4, 10, 10), (4, 84, 84).
        num_actions: number of discrete actions.
        torso: "auto", "mlp", "minatar" or "nature" (see the module docstring).
        hidden: MLP hidden sizes (mlp torso only).
        dueling: dueling head (V + A - mean A) if True, else one Linear to the Q-values.
        normalize_obs: normalise observations by running statistics (see the module docstring).

    Returns:
        A :class:`QNetwork`; ``net(obs)`` -> [B, num_actions], obs float32 or uint8 (/255).
    """
    num_actions = _check_actions(num_actions)
    body = build_torso(obs_shape, torso, hidden, normalize_obs=normalize_obs)
    if dueling:
        head: nn.Module = DuelingHead(body.out_features, num_actions)
    else:
        head = nn.Linear(body.out_features, num_actions)
    return QNetwork(body, head, num_actions)


def build_policy_value_network(
    obs_shape: tuple[int, ...],
    num_actions: int,
    *,
    torso: str = "auto",
    hidden: tuple[int, ...] = (256, 256),
    core: str = "none",
    lstm_size: int = 256,
    normalize_obs: bool = False,
    head: Callable[[int], nn.Module] | None = None,
) -> nn.Module:
    """A policy-value network on the same torsos.

    ``core="none"``: :class:`PolicyValueNetwork`, ``forward(obs) -> (logits [B, A], value [B])``.
    ``core="lstm"``: :class:`~rlfleet.models.recurrent.LSTMPolicyValueNetwork` with an LSTM of
    ``lstm_size`` between torso and heads; its forward takes and returns the core state.
    ``head(width)``, when given, builds the policy head on the features of that width (a
    :class:`~rlfleet.models.heads.GaussianHead` for Box actions; ``num_actions`` is then unused);
    the default is categorical logits over ``num_actions``.
    """
    num_actions = _check_actions(num_actions)
    if core not in CORES:
        raise ConfigError(f"unknown core {core!r}; valid cores: {', '.join(CORES)}")
    body = build_torso(obs_shape, torso, hidden, normalize_obs=normalize_obs)
    if core == "lstm":
        made = head(int(lstm_size)) if head is not None else None
        return LSTMPolicyValueNetwork(body, num_actions, lstm_size, head=made)
    return PolicyValueNetwork(body, num_actions, head(body.out_features) if head else None)
