"""Policy heads: what turns features into an action distribution, for both action kinds.

A head maps features ``[B, F]`` to one tensor of distribution parameters ``[B, P]`` (so a
network's output stays ``(params, value)``) and knows its distribution:

* :class:`CategoricalHead` (``Discrete``): ``P = A`` logits. It *is* an ``nn.Linear``, so
  networks that had a plain linear policy layer keep their parameter names and checkpoints.
* :class:`GaussianHead` (bounded ``Box``): ``P = 2D``, the mean then the log standard deviation
  of a diagonal Gaussian over a raw action ``u``; the log-std is one learned vector
  (state-independent, the PPO default) or a linear layer of the features (state-dependent).
  The env receives ``u`` squashed into the bounds by tanh (default, with the Jacobian in the
  log-probability) or clipped to them (log-probability of the unclipped ``u``); see
  :mod:`rlfleet.math.distributions`.

Every head samples (seeded by a ``torch.Generator``), scores raw actions (``log_prob``), gives
the entropy, the greedy action, and the env action of a raw one (``to_env``). Raw actions are
what messages carry: integer indices, or the unsquashed Gaussian sample (never inverted).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlfleet.errors import ConfigError
from rlfleet.math.distributions import (
    SQUASHES,
    gaussian_entropy,
    squash_to_bounds,
    squashed_log_prob,
)
from rlfleet.math.policy_losses import action_log_probs

__all__ = [
    "LOG_STD_MAX",
    "LOG_STD_MIN",
    "CategoricalHead",
    "GaussianHead",
    "PolicyHead",
    "is_continuous_head",
]

#: The log-std of a Gaussian head is clamped to this range (std in [2e-9, 7.4]).
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


class PolicyHead(Protocol):
    """What every head offers besides ``forward(features) -> params``."""

    #: ``"categorical"`` or ``"gaussian"``.
    kind: str
    #: Per-step shape and numpy dtype of a raw action (``()``/int64, or ``(D,)``/float32).
    action_shape: tuple[int, ...]
    action_dtype: np.dtype

    def log_prob(self, params: torch.Tensor, actions: torch.Tensor) -> torch.Tensor: ...
    def entropy(self, params: torch.Tensor) -> torch.Tensor: ...
    def sample(self, params: torch.Tensor, generator: torch.Generator) -> torch.Tensor: ...
    def greedy(self, params: torch.Tensor) -> torch.Tensor: ...
    def to_env(self, actions: torch.Tensor) -> torch.Tensor: ...


def is_continuous_head(head: Any) -> bool:
    """True for a head over continuous (Box) actions."""
    return getattr(head, "kind", "") == "gaussian"


class CategoricalHead(nn.Linear):
    """Logits ``[B, A]`` of a categorical policy (an ``nn.Linear`` with a distribution)."""

    kind = "categorical"
    action_shape: tuple[int, ...] = ()
    action_dtype = np.dtype(np.int64)

    def __init__(self, in_features: int, num_actions: int) -> None:
        if isinstance(num_actions, bool) or int(num_actions) != num_actions or num_actions < 1:
            raise ConfigError(f"num_actions must be an integer >= 1, got {num_actions!r}")
        super().__init__(int(in_features), int(num_actions))
        self.num_actions = int(num_actions)

    def log_prob(self, params: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``log softmax(logits)[a]``."""
        return action_log_probs(params, actions.long())

    def entropy(self, params: torch.Tensor) -> torch.Tensor:
        log_pi = F.log_softmax(params, dim=-1)
        return -(log_pi.exp() * log_pi).sum(dim=-1)

    def sample(self, params: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One action per row, drawn from ``softmax(logits)`` (batched, no Python loop)."""
        probs = F.softmax(params.float(), dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)

    def greedy(self, params: torch.Tensor) -> torch.Tensor:
        return params.argmax(dim=-1)

    def to_env(self, actions: torch.Tensor) -> torch.Tensor:
        return actions


class GaussianHead(nn.Module):
    """A diagonal Gaussian over raw actions, squashed or clipped into ``[low, high]``.

    Args:
        in_features: F.
        low, high: the Box bounds, ``[D]`` each, finite with ``high > low``.
        squash: ``"tanh"`` (default) or ``"clip"``.
        state_dependent_std: the log-std is a linear layer of the features (else one vector).
        log_std_init: initial log-std (the layer's bias when state-dependent).
    """

    kind = "gaussian"
    action_dtype = np.dtype(np.float32)

    def __init__(
        self,
        in_features: int,
        low: Any,
        high: Any,
        *,
        squash: str = "tanh",
        state_dependent_std: bool = False,
        log_std_init: float = 0.0,
    ) -> None:
        super().__init__()
        low_t = torch.as_tensor(np.asarray(low, np.float32).reshape(-1))
        high_t = torch.as_tensor(np.asarray(high, np.float32).reshape(-1))
        if low_t.shape != high_t.shape or low_t.numel() == 0:
            raise ConfigError(f"low {low_t.tolist()} and high {high_t.tolist()} must match")
        if not (torch.isfinite(low_t).all() and torch.isfinite(high_t).all()):
            raise ConfigError(
                f"a Gaussian head needs finite action bounds, got low {low_t.tolist()} high "
                f"{high_t.tolist()}"
            )
        if (high_t <= low_t).any():
            raise ConfigError(f"high must exceed low, got {low_t.tolist()} .. {high_t.tolist()}")
        if squash not in SQUASHES:
            raise ConfigError(f"unknown squash {squash!r}; valid: {', '.join(SQUASHES)}")
        d = low_t.numel()
        self.action_shape = (d,)
        self.squash = squash
        self.mean = nn.Linear(int(in_features), d)
        self.state_dependent_std = bool(state_dependent_std)
        if self.state_dependent_std:
            self.log_std_layer = nn.Linear(int(in_features), d)
            nn.init.zeros_(self.log_std_layer.weight)
            nn.init.constant_(self.log_std_layer.bias, float(log_std_init))
        else:
            self.log_std = nn.Parameter(torch.full((d,), float(log_std_init)))
        # bounds come from the environment on both ends: not parameters, not checkpointed
        self.register_buffer("low", low_t, persistent=False)
        self.register_buffer("high", high_t, persistent=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        mean = self.mean(features)
        if self.state_dependent_std:
            log_std = self.log_std_layer(features)
        else:
            log_std = self.log_std.expand_as(mean)
        return torch.cat([mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)], dim=-1)

    def split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean [B, D], log_std [B, D])`` of ``params [B, 2D]``."""
        d = self.action_shape[0]
        if params.shape[-1] != 2 * d:
            raise ConfigError(f"params have {params.shape[-1]} columns; a {d}-D head has {2 * d}")
        return params[..., :d], params[..., d:]

    def log_prob(self, params: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Log-probability of the env action made from raw ``actions`` ``[B, D]``."""
        mean, log_std = self.split(params)
        return squashed_log_prob(actions, mean, log_std, self.low, self.high, self.squash)

    def entropy(self, params: torch.Tensor) -> torch.Tensor:
        """Entropy of the Gaussian over raw actions (the squashed action's has no closed form;
        as an entropy bonus this is the usual stand-in)."""
        return gaussian_entropy(self.split(params)[1])

    def sample(self, params: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        mean, log_std = self.split(params)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        return mean + noise * log_std.exp()

    def greedy(self, params: torch.Tensor) -> torch.Tensor:
        """The mean, squashed or clipped into the bounds (an env action)."""
        return self.to_env(self.split(params)[0])

    def to_env(self, actions: torch.Tensor) -> torch.Tensor:
        return squash_to_bounds(actions, self.low, self.high, self.squash)
