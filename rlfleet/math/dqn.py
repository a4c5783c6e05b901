"""Double-DQN n-step targets and the importance-weighted Huber loss (Ape-X, Horgan et al. 2018).

The replay stores, per transition, the n-step return ``G = sum_{k<m} gamma^k r_{t+k}`` and the
bootstrap ``discount`` (``gamma^m``, or ``0`` when the episode *terminated* within the m steps;
truncation keeps it). The target is then

    y = G + discount * Q_target(s', argmax_a Q_online(s', a))

so one function serves 1-step, n-step and partial sequences alike.
"""

from __future__ import annotations

import torch


def double_q_target(
    reward: torch.Tensor,
    discount: torch.Tensor,
    next_q_online: torch.Tensor,
    next_q_target: torch.Tensor,
    double: bool = True,
) -> torch.Tensor:
    """n-step double-DQN target ``[B]``; no gradient flows through it.

    ``next_q_online`` selects the action (double Q-learning), ``next_q_target`` evaluates it.
    With ``double=False`` the target network both selects and evaluates (plain DQN).
    """
    with torch.no_grad():
        selector = next_q_online if double else next_q_target
        best = selector.argmax(dim=1, keepdim=True)
        bootstrap = next_q_target.gather(1, best).squeeze(1)
        return reward + discount * bootstrap


def td_errors(q: torch.Tensor, actions: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``target - Q(s, a)`` per item, ``[B]``."""
    chosen = q.gather(1, actions.long().unsqueeze(1)).squeeze(1)
    return target - chosen


def huber(x: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    """Elementwise Huber: quadratic within ``delta``, linear outside."""
    abs_x = x.abs()
    quadratic = torch.clamp(abs_x, max=delta)
    return 0.5 * quadratic**2 + delta * (abs_x - quadratic)


def weighted_huber_loss(
    td: torch.Tensor, weights: torch.Tensor, delta: float = 1.0
) -> torch.Tensor:
    """Mean over the batch of ``w_i * huber(delta_i)`` (importance-sampling correction)."""
    return (weights * huber(td, delta)).mean()
