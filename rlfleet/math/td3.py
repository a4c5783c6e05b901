"""Deterministic policy gradients: DDPG (Lillicrap et al. 2016) and TD3's target (Fujimoto et al.
2018), Polyak averaging, and the per-explorer exploration ladder of Ape-X (Horgan et al. 2018).

* :func:`td3_target` -- ``y = r + discount * min_c Q'_c(s', a')`` over the critics given (one
  critic: DDPG's target; two: TD3's clipped double-Q). ``discount`` is already ``gamma^n`` or 0
  at a terminal, as n-step replay stores it.
* :func:`smoothed_target_action` -- TD3's target policy smoothing ``a' = clip(mu'(s') +
  clip(eps, -c, c), low, high)`` with the noise passed in (so tests are exact).
* :func:`polyak_update_` -- ``theta' <- (1 - tau) theta' + tau theta`` in place, in one fused
  op over all tensors.
* :func:`exploration_ladder` -- ``base ** (1 + alpha * i / (N - 1))``: Ape-X's per-actor
  epsilons, used by Ape-X DPG for per-actor Gaussian noise scales.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def td3_target(reward: torch.Tensor, discount: torch.Tensor, next_q: torch.Tensor) -> torch.Tensor:
    """``reward + discount * min_c next_q[c]``.

    Args:
        reward: [B] n-step discounted reward sums.
        discount: [B] ``gamma^n``, 0 where the episode terminated inside the n steps.
        next_q: [C, B] target critics' values of the (smoothed) target action at ``next_obs``;
            C = 1 is DDPG, C = 2 TD3's clipped double-Q (the minimum of the two).
    """
    if next_q.dim() != 2 or next_q.shape[1] != reward.shape[0]:
        raise ValueError(
            f"next_q must be [C, B] with B = {reward.shape[0]}, got {tuple(next_q.shape)}"
        )
    return reward + discount * next_q.min(dim=0).values


def smoothed_target_action(
    action: torch.Tensor,
    noise: torch.Tensor,
    noise_clip: torch.Tensor | float,
    low: torch.Tensor,
    high: torch.Tensor,
) -> torch.Tensor:
    """``clip(action + clip(noise, -noise_clip, noise_clip), low, high)`` (TD3's target policy
    smoothing). ``noise`` is already scaled (``sigma * N(0, 1)``); ``noise_clip``, ``low`` and
    ``high`` broadcast over the action dimension."""
    clip = torch.as_tensor(noise_clip, dtype=noise.dtype)
    eps = torch.maximum(torch.minimum(noise, clip), -clip)
    return torch.maximum(torch.minimum(action + eps, high), low)


@torch.no_grad()
def polyak_update_(
    target: Sequence[torch.Tensor], online: Sequence[torch.Tensor], tau: float
) -> None:
    """``target <- (1 - tau) * target + tau * online`` for every pair, in place.

    ``torch._foreach_lerp_`` computes ``t + tau * (o - t)``: the same average, in one op over
    the whole list (the learner is bound by per-op overhead on small networks)."""
    if len(target) != len(online):
        raise ValueError(f"{len(target)} target tensors for {len(online)} online tensors")
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must be in [0, 1], got {tau}")
    if target:
        torch._foreach_lerp_(list(target), list(online), float(tau))


def exploration_ladder(count: int, base: float, alpha: float) -> np.ndarray:
    """``base ** (1 + alpha * i / (count - 1))`` for ``i = 0 .. count - 1`` (Horgan et al.
    2018's per-actor epsilons; ``base`` alone for a single explorer)."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if count == 1:
        return np.array([base], dtype=np.float64)
    i = np.arange(count, dtype=np.float64)
    return base ** (1.0 + alpha * i / (count - 1))
