"""Log-probabilities and entropies of the policies rlfleet acts with, as pure tensor functions.

* Diagonal Gaussian ``N(mean, diag(exp(log_std)^2))`` over ``D`` action dimensions: log-density
  and entropy summed over the last axis.
* Box bounds ``[low, high]``, two ways (:data:`SQUASHES`):

  - ``"tanh"``: the env receives ``a = low + (tanh(u) + 1) * (high - low) / 2`` for a Gaussian
    sample ``u``. By the change of variables the density of ``a`` is
    ``log p(a) = log N(u) - sum_i [log(1 - tanh(u_i)^2) + log((high_i - low_i) / 2)]``
    (:func:`tanh_log_det_jacobian` is the bracket, computed stably from ``u``).
  - ``"clip"``: the env receives ``clip(u, low, high)``; the log-probability is that of the
    unclipped sample ``u`` (what PPO implementations such as baselines and SB3 use: the policy
    gradient is taken for the sample the Gaussian drew).

Policies store the raw sample ``u`` with the transition, so neither mode ever inverts tanh
(``atanh`` at the bounds is infinite).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rlfleet.errors import ConfigError

__all__ = [
    "SQUASHES",
    "gaussian_entropy",
    "gaussian_log_prob",
    "squash_to_bounds",
    "squashed_log_prob",
    "tanh_log_det_jacobian",
]

#: How a Gaussian sample reaches a bounded Box: tanh-squashed (default) or clipped.
SQUASHES = ("tanh", "clip")

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _check_broadcast(**tensors: torch.Tensor) -> None:
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    try:
        torch.broadcast_shapes(*shapes.values())
    except RuntimeError:
        raise ConfigError(f"shapes do not broadcast: {shapes}") from None


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """``log N(x; mean, exp(log_std)^2)`` summed over the last axis: ``[..., D] -> [...]``.

    Per dimension: ``-(x - mean)^2 / (2 std^2) - log_std - log sqrt(2 pi)``.
    """
    _check_broadcast(x=x, mean=mean, log_std=log_std)
    z = (x - mean) * torch.exp(-log_std)
    return (-0.5 * z.square() - log_std - _LOG_SQRT_2PI).sum(dim=-1)


def gaussian_entropy(log_std: torch.Tensor) -> torch.Tensor:
    """Entropy of a diagonal Gaussian, summed over the last axis: ``sum_i (log_std_i + 0.5 *
    log(2 pi e))``; ``[..., D] -> [...]``."""
    return (log_std + 0.5 + _LOG_SQRT_2PI).sum(dim=-1)


def tanh_log_det_jacobian(u: torch.Tensor) -> torch.Tensor:
    """``sum_i log(1 - tanh(u_i)^2)`` over the last axis, stably for large ``|u|``.

    Uses ``log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u))``, which stays finite where
    ``1 - tanh(u)^2`` underflows to 0 in float32 (``|u| > ~9``).
    """
    return (2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(dim=-1)


def _half_range(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    if not (torch.isfinite(low).all() and torch.isfinite(high).all()) or (high <= low).any():
        raise ConfigError(
            f"bounds must be finite with high > low, got low {low.tolist()} high {high.tolist()}"
        )
    return (high - low) / 2.0


def squash_to_bounds(
    u: torch.Tensor, low: torch.Tensor, high: torch.Tensor, squash: str
) -> torch.Tensor:
    """The env action of raw sample ``u``: ``low + (tanh(u) + 1) * (high - low) / 2`` (tanh) or
    ``clip(u, low, high)`` (clip)."""
    if squash == "tanh":
        return low + (torch.tanh(u) + 1.0) * _half_range(low, high)
    if squash == "clip":
        return torch.maximum(torch.minimum(u, high), low)
    raise ConfigError(f"unknown squash {squash!r}; valid: {', '.join(SQUASHES)}")


def squashed_log_prob(
    u: torch.Tensor,
    mean: torch.Tensor,
    log_std: torch.Tensor,
    low: torch.Tensor,
    high: torch.Tensor,
    squash: str,
) -> torch.Tensor:
    """Log-probability of the env action made from raw sample ``u`` (see the module docstring).

    ``"tanh"``: ``log N(u) - tanh_log_det_jacobian(u) - sum log((high - low) / 2)``, the density
    of the squashed action in the env's units. ``"clip"``: ``log N(u)``, the unclipped sample's.
    """
    base = gaussian_log_prob(u, mean, log_std)
    if squash == "clip":
        return base
    if squash != "tanh":
        raise ConfigError(f"unknown squash {squash!r}; valid: {', '.join(SQUASHES)}")
    scale = torch.log(_half_range(low, high)).sum()
    return base - tanh_log_det_jacobian(u) - scale
