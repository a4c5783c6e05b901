"""Generalized advantage estimation (Schulman et al. 2016), time-major.

With per-step discounts ``d_t`` that already hold termination (``gamma * (1 - terminated_t)``,
and 0 wherever an episode ended inside the rollout):

    delta_t = r_t + d_t * V(s_{t+1}) - V(s_t)
    A_t     = delta_t + d_t * lambda * A_{t+1}          (A_T = 0)
    R_t     = A_t + V(s_t)                               (the value target, "returns")

``V(s_T)`` is the bootstrap value. A step that ended its episode by a **time limit** bootstraps
from the true final observation: callers rewrite it as ``r_t + gamma * V(x_final)`` with
``d_t = 0`` (exact: the episode has no later steps in this rollout), as IMPALA's unrolls do.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from rlfleet.errors import ConfigError

__all__ = ["GAEReturns", "gae"]


class GAEReturns(NamedTuple):
    """Output of :func:`gae` (both ``[T, B]``, no gradient)."""

    advantages: torch.Tensor
    returns: torch.Tensor
    """``advantages + values``: the value function's regression target."""


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    bootstrap_value: torch.Tensor,
    discounts: torch.Tensor,
    lambda_: float,
) -> GAEReturns:
    """GAE(lambda) advantages and value targets (see the module docstring).

    Args:
        rewards: ``r_t`` ``[T, B]``.
        values: ``V(s_t)`` ``[T, B]``.
        bootstrap_value: ``V(s_T)`` ``[B]``.
        discounts: ``d_t`` ``[T, B]``, 0 where step t ended its episode.
        lambda_: in ``[0, 1]``; 1 gives discounted returns minus values, 0 the one-step TD error.

    Raises:
        ConfigError: mismatched shapes, an empty rollout or ``lambda_`` outside ``[0, 1]``.
    """
    if isinstance(lambda_, bool) or not isinstance(lambda_, int | float) or not 0 <= lambda_ <= 1:
        raise ConfigError(f"lambda_ must be a number in [0, 1], got {lambda_!r}")
    if values.dim() < 1 or values.shape[0] == 0:
        raise ConfigError(
            f"values must be time-major [T, B] with T >= 1, got {tuple(values.shape)}"
        )
    for name, x in (("rewards", rewards), ("discounts", discounts)):
        if x.shape != values.shape:
            raise ConfigError(
                f"{name} has shape {tuple(x.shape)}; it must match values {tuple(values.shape)}"
            )
    if bootstrap_value.shape != values.shape[1:]:
        raise ConfigError(
            f"bootstrap_value has shape {tuple(bootstrap_value.shape)}; expected"
            f" {tuple(values.shape[1:])}"
        )
    with torch.no_grad():
        next_values = torch.cat([values[1:], bootstrap_value.unsqueeze(0)], dim=0)
        deltas = rewards + discounts * next_values - values
        decay = discounts * float(lambda_)
        advantages = torch.empty_like(deltas)
        acc = torch.zeros_like(deltas[0])
        # backwards over time: the recursion is sequential in t, vectorised over the batch
        for t in range(deltas.shape[0] - 1, -1, -1):
            acc = deltas[t] + decay[t] * acc
            advantages[t] = acc
        return GAEReturns(advantages, advantages + values)
