"""PPO's loss terms (Schulman et al. 2017), each the unweighted term over a minibatch.

With ``log_ratio = log pi(a|s) - log pi_old(a|s)`` and ``r = exp(log_ratio)``:

    surrogate = -mean(min(r * A, clip(r, 1 - eps, 1 + eps) * A))
    value     = mean((V - R)^2), or with clipping (baselines ppo2)
                mean(max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2))
    approx_kl = mean((r - 1) - log r)    (non-negative; Schulman's low-variance estimator)

The value term has no 0.5 factor, as in Stable-Baselines3, so the RL Zoo's ``vf_coef`` carries
over unchanged as rlfleet's ``algo.value_cost``.
"""

from __future__ import annotations

import torch

from rlfleet.errors import ConfigError

__all__ = [
    "approx_kl",
    "clip_fraction",
    "clipped_surrogate_loss",
    "normalize_advantages",
    "value_loss",
]


def _check_eps(clip_eps: float) -> float:
    if isinstance(clip_eps, bool) or not isinstance(clip_eps, int | float) or not clip_eps > 0:
        raise ConfigError(f"clip_eps must be a number > 0, got {clip_eps!r}")
    return float(clip_eps)


def clipped_surrogate_loss(
    log_ratio: torch.Tensor, advantages: torch.Tensor, clip_eps: float
) -> torch.Tensor:
    """``-mean(min(r A, clip(r, 1 - eps, 1 + eps) A))``; the advantages carry no gradient."""
    eps = _check_eps(clip_eps)
    if log_ratio.shape != advantages.shape:
        raise ConfigError(
            f"log_ratio has shape {tuple(log_ratio.shape)}; advantages {tuple(advantages.shape)}"
        )
    adv = advantages.detach()
    ratio = torch.exp(log_ratio)
    return -torch.min(ratio * adv, ratio.clamp(1.0 - eps, 1.0 + eps) * adv).mean()


def value_loss(
    values: torch.Tensor,
    returns: torch.Tensor,
    old_values: torch.Tensor | None = None,
    clip: float = 0.0,
) -> torch.Tensor:
    """``mean((V - R)^2)``, or the clipped form when ``clip > 0`` (then ``old_values`` are the
    values at collection time). Targets carry no gradient."""
    if values.shape != returns.shape:
        raise ConfigError(f"values {tuple(values.shape)} and returns {tuple(returns.shape)} differ")
    target = returns.detach()
    loss = (values - target).square()
    if clip and clip > 0:
        if old_values is None or old_values.shape != values.shape:
            raise ConfigError("value clipping needs old_values of the same shape as values")
        old = old_values.detach()
        clipped = old + (values - old).clamp(-clip, clip)
        loss = torch.max(loss, (clipped - target).square())
    return loss.mean()


def approx_kl(log_ratio: torch.Tensor) -> torch.Tensor:
    """``mean((r - 1) - log r)``: an estimate of ``KL(pi_old || pi)``, >= 0, no gradient."""
    with torch.no_grad():
        return (torch.expm1(log_ratio) - log_ratio).mean()


def clip_fraction(log_ratio: torch.Tensor, clip_eps: float) -> torch.Tensor:
    """Share of samples whose ratio lies outside ``[1 - eps, 1 + eps]``."""
    eps = _check_eps(clip_eps)
    with torch.no_grad():
        return ((torch.exp(log_ratio) - 1.0).abs() > eps).float().mean()


def normalize_advantages(advantages: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``(A - mean A) / (std A + eps)`` over the minibatch (a single sample is only centred)."""
    centred = advantages - advantages.mean()
    if advantages.numel() < 2:
        return centred
    return centred / (advantages.std() + eps)
