"""DQfD (Hester et al. 2018) and Ape-X DQfD (Pohlen et al. 2018) loss terms as pure functions.

Built beside :mod:`rlfleet.math.dqn` and on top of it: the double-DQN target, the TD error and the
(weighted) Huber loss come from there; this module adds what learning from demonstrations needs:

- :func:`large_margin_loss` -- DQfD's supervised term ``J_E`` on demonstration items only;
- :func:`value_rescale` (the paper's h) / :func:`value_rescale_inverse` (h^-1) and :func:`transformed_double_q_target` -- Ape-X DQfD's value rescaling
  and its transformed Bellman target (instead of reward clipping);
- :func:`temporal_consistency_loss` -- Ape-X DQfD's TC loss;
- :func:`l2_regularization` -- DQfD's ``J_L2`` (the caller scales it by ``lambda3``, 1e-5 in DQfD);
- :func:`expert_batch_split` and :func:`best_episodes_mask` -- the fixed expert share of every
  batch and the restriction of the imitation loss to the best expert episodes.

Reductions follow :func:`rlfleet.math.dqn.weighted_huber_loss`: a mean over the whole batch (the
papers write sums; a sum differs only by the constant batch size, which the learning rate absorbs).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from fractions import Fraction

import torch

from rlfleet.errors import ConfigError
from rlfleet.math.dqn import double_q_target, td_errors, weighted_huber_loss

# --------------------------------------------------------------------------- large-margin loss


def large_margin_loss(
    q: torch.Tensor,
    expert_actions: torch.Tensor,
    is_demo: torch.Tensor,
    margin: float = 0.8,
) -> torch.Tensor:
    """DQfD's large-margin supervised loss per item, ``[B]``; 0 for non-demonstration items.

    ``J_E(Q) = max_a [Q(s, a) + l(a_E, a)] - Q(s, a_E)`` with ``l(a_E, a) = margin`` for
    ``a != a_E`` and ``0`` for ``a == a_E`` (Hester et al. 2018; margin 0.8 in DQfD, sqrt(0.999) in
    Ape-X DQfD). It is ``>= 0`` and is 0 exactly when the expert action beats every other action by
    at least the margin.

    Args:
        q: online ``Q(s, .)``, ``[B, A]``; gradients flow through it.
        expert_actions: the demonstrated action ``a_E`` per item, ``[B]`` (any integer dtype).
            Ignored (but must still be a valid index) where ``is_demo`` is false.
        is_demo: ``[B]`` mask, true for demonstration items. Self-generated data has
            ``lambda2 = 0`` in DQfD, so those items contribute exactly 0 and receive no gradient.
            To restrict imitation to the best expert episodes, AND this mask with
            :func:`best_episodes_mask` looked up by each item's episode.
        margin: the margin ``l`` for non-expert actions; must be finite and ``>= 0``.

    Reduction: none. DQfD averages over the whole minibatch, i.e. ``loss.mean()`` (non-demo items
    count as 0 in the denominator); with prioritized replay multiply by the importance weights
    first. To average over the demonstration items only, use :func:`masked_mean`.
    """
    if not (math.isfinite(margin) and margin >= 0.0):
        raise ConfigError(f"margin must be a finite number >= 0, got {margin!r}")
    index = expert_actions.long().unsqueeze(1)
    q_expert = q.gather(1, index).squeeze(1)
    # l(a_E, .) as a [B, A] tensor: margin everywhere, 0 at the expert action.
    margins = torch.full_like(q, margin).scatter(1, index, 0.0)
    per_item = (q + margins).max(dim=1).values - q_expert
    # where(), not a multiply, so a non-finite Q on a non-demo row cannot leak NaN (0 * inf).
    return torch.where(is_demo.bool(), per_item, torch.zeros_like(per_item))


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over the items where ``mask`` is true; 0 when no item is selected.

    The alternative reduction for :func:`large_margin_loss`: the average imitation loss per
    demonstration item, independent of how many demonstrations the batch happens to contain.
    """
    selected = mask.bool()
    count = selected.sum()
    total = torch.where(selected, values, torch.zeros_like(values)).sum()
    # clamp keeps an all-false mask at 0 / 1 = 0 instead of 0 / 0 = NaN.
    return total / count.clamp(min=1).to(values.dtype)


# --------------------------------------------------------------------------- value rescaling


def _check_eps(eps: float) -> None:
    # eps < 0 makes h non-monotone for large |z| (no inverse); eps = 0 is the pure square root.
    if not (math.isfinite(eps) and eps >= 0.0):
        raise ConfigError(f"eps must be a finite number >= 0 (Ape-X DQfD uses 1e-2), got {eps!r}")


def value_rescale(z: torch.Tensor, eps: float = 1e-2) -> torch.Tensor:
    """Ape-X DQfD value rescaling ``h(z) = sign(z) (sqrt(|z| + 1) - 1) + eps z`` (elementwise).

    ``sqrt(|z| + 1) - 1`` is evaluated as ``|z| / (sqrt(|z| + 1) + 1)``: the same value, without
    the cancellation that loses all relative precision for small ``|z|`` in float32.
    """
    _check_eps(eps)
    abs_z = z.abs()
    return torch.sign(z) * abs_z / (torch.sqrt(abs_z + 1.0) + 1.0) + eps * z


def value_rescale_inverse(z: torch.Tensor, eps: float = 1e-2) -> torch.Tensor:
    """Exact inverse of :func:`h`:
    ``h_inv(z) = sign(z) (((sqrt(1 + 4 eps (|z| + 1 + eps)) - 1) / (2 eps))^2 - 1)``.

    Evaluated in an algebraically identical form without cancellation or division by ``eps``:
    with ``c = |z| + 1 + eps``, ``s = sqrt(1 + 4 eps c)`` and ``u = (s - 1) / (2 eps)``,

        u - 1 = 4 |z| c / ((1 + s) (1 + 2 eps + 2 |z| + s))   and   u^2 - 1 = (u - 1) (u + 1),

    so the result keeps full relative precision near 0 (where the literal formula subtracts nearly
    equal numbers twice) and ``eps = 0`` gives the inverse of the pure square root. The product
    ``|z| c`` is about ``z^2``: float32 inputs must stay below ~1e19 in magnitude.
    """
    _check_eps(eps)
    abs_z = z.abs()
    c = abs_z + 1.0 + eps
    s = torch.sqrt(1.0 + 4.0 * eps * c)
    u_minus_1 = 4.0 * abs_z * c / ((1.0 + s) * (1.0 + 2.0 * eps + 2.0 * abs_z + s))
    return torch.sign(z) * u_minus_1 * (u_minus_1 + 2.0)


def transformed_double_q_target(
    reward: torch.Tensor,
    discount: torch.Tensor,
    next_q_online: torch.Tensor,
    next_q_target: torch.Tensor,
    eps: float = 1e-2,
    double: bool = True,
) -> torch.Tensor:
    """Ape-X DQfD's transformed n-step double-DQN target ``[B]``; no gradient flows through it.

    ``y = h(G + discount * h_inv(Q_target(s', argmax_a Q_online(s', a))))`` with ``G`` and
    ``discount`` as in :func:`rlfleet.math.dqn.double_q_target` (n-step return and ``gamma^n``, or
    0 when the episode terminated). The networks output values in ``h``-space, so the bootstrap is
    mapped back with ``h_inv`` before the Bellman backup and the sum forward with ``h``.

    The action is selected on the raw online values: ``h_inv`` is strictly increasing, so the
    argmax is the same and mapping the online values would only cost time.
    """
    _check_eps(eps)
    with torch.no_grad():
        untransformed = double_q_target(
            reward,
            discount,
            next_q_online,
            value_rescale_inverse(next_q_target, eps),
            double=double,
        )
        return value_rescale(untransformed, eps)


# --------------------------------------------------------------------------- temporal consistency


def temporal_consistency_loss(
    next_q_current: torch.Tensor,
    next_q_previous: torch.Tensor,
    next_actions: torch.Tensor,
    weights: torch.Tensor | None = None,
    delta: float = 1.0,
) -> torch.Tensor:
    """Ape-X DQfD's temporal-consistency loss, a scalar (mean over the batch).

    Definition (reference: /work/shared/reference/algorithms.md, section "Ape-X DQfD":
    ``L_TC = sum_i p_i * L(f_theta(s'_i, a'_i) - f_theta_prev(s'_i, a'_i))``, from Pohlen et al.
    2018, "Observe and Look Further"). Implemented exactly as::

        L_TC = (1/B) sum_i w_i * huber_delta( f_theta(s'_i, a'_i) - f_theta_prev(s'_i, a'_i) )

    The reference leaves three things open; the choices made here:

    - ``L`` is the Huber loss, the same ``L`` as the TD loss in :mod:`rlfleet.math.dqn`;
    - ``p_i`` are the importance weights ``w_i`` (1 when ``weights`` is None), and the sum is a
      batch mean, as in :func:`rlfleet.math.dqn.weighted_huber_loss`;
    - ``a'_i`` is whatever the caller passes; the intended value is the greedy action under the
      current parameters, ``argmax_a f_theta(s', a)`` (the action the double-DQN target selects).

    Which parameters count as "previous" (the target network, or a copy from before the last
    update) is the learner's choice; this function only guarantees that they get no gradient.

    Args:
        next_q_current: ``f_theta(s', .)`` under the current parameters, ``[B, A]``; gradients
            flow through it.
        next_q_previous: ``f_theta_prev(s', .)`` under the previous parameters, ``[B, A]``. It is
            detached here, so no gradient ever reaches the previous parameters: the loss only
            pulls the current network towards what it predicted before.
        next_actions: ``a'_i``, ``[B]``: pass ``next_q_current.argmax(1)``, or the online
            selection already computed for the target.
        weights: importance weights ``[B]``; multiply in a 0/1 mask to exclude items (e.g.
            terminated transitions, whose ``s'`` the TD target never uses).
        delta: Huber threshold.
    """
    # Detached: the previous parameters are a fixed reference, never a thing to optimise.
    previous = next_q_previous.detach().gather(1, next_actions.long().unsqueeze(1)).squeeze(1)
    # td_errors gives previous - current; the Huber loss is even, so the sign does not matter.
    change = td_errors(next_q_current, next_actions, previous)
    if weights is None:
        weights = torch.ones_like(change)
    return weighted_huber_loss(change, weights, delta)


# --------------------------------------------------------------------------- L2


def l2_regularization(parameters: Iterable[torch.Tensor]) -> torch.Tensor:
    """DQfD's ``J_L2``: the sum of the squares of every element of every given tensor (0-d).

    No factor 1/2 (unlike ``tf.nn.l2_loss``) and no coefficient: the caller multiplies by
    ``lambda3`` (1e-5 in DQfD). Every tensor passed is included; pass only weight matrices to
    leave biases unregularized. An empty iterable gives 0.
    """
    squares = [p.pow(2).sum() for p in parameters]
    if not squares:
        return torch.zeros(())
    return torch.stack(squares).sum()


# --------------------------------------------------------------------------- batch composition


def _exact_fraction(name: str, value: float, low_open: bool) -> Fraction:
    """``value`` as the exact decimal it was written as (0.35 -> 35/100), range-checked."""
    valid = "(0, 1]" if low_open else "[0, 1]"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number in {valid}, got {value!r}")
    ok = 0.0 < value <= 1.0 if low_open else 0.0 <= value <= 1.0  # NaN fails both
    if not ok:
        raise ConfigError(f"{name} must be a number in {valid}, got {value!r}")
    # repr() is the shortest string that round-trips the float, i.e. what the user wrote; the
    # binary value of 0.35 is 0.34999..., which would round 10 * 0.35 down to 3.
    return Fraction(repr(float(value)))


def expert_batch_split(batch_size: int, expert_fraction: float = 0.25) -> tuple[int, int]:
    """``(n_agent, n_expert)`` for one learner batch mixing actor and expert replay at a fixed ratio.

    ``n_expert = round_half_up(batch_size * expert_fraction)`` and ``n_agent = batch_size -
    n_expert``, so every batch holds exactly the same number of expert items (Ape-X DQfD: 25%).
    The product is computed exactly on the fraction's decimal value as written (``0.35`` means
    35/100, not the nearest binary float), and ties round up: 10 x 0.35 -> 4, 2 x 0.25 -> 1.
    A small batch with a small fraction can therefore get 0 expert items (4 x 0.1 -> 0).

    Raises:
        ConfigError: ``batch_size`` not an integer >= 1, or ``expert_fraction`` not in [0, 1].
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    fraction = _exact_fraction("expert_fraction", expert_fraction, low_open=False)
    n_expert = math.floor(batch_size * fraction + Fraction(1, 2))
    return batch_size - n_expert, n_expert


def best_episodes_mask(
    episode_returns: torch.Tensor | Sequence[float],
    top_fraction: float | None = None,
    top_k: int | None = None,
) -> torch.Tensor:
    """Boolean mask ``[E]`` selecting the best expert episodes by return (give exactly one option).

    Ape-X DQfD applies the imitation (large-margin) loss only to the best expert episodes. Index
    the mask by each transition's episode and AND it with ``is_demo`` for
    :func:`large_margin_loss`.

    Args:
        episode_returns: one return per episode, ``[E]``; NaN is rejected.
        top_fraction: keep ``k = ceil(E * top_fraction)`` episodes, in (0, 1], computed exactly on
            the decimal as written. Ceil, so any positive fraction keeps at least one episode.
        top_k: keep ``min(top_k, E)`` episodes; an integer >= 1.

    Exactly ``k`` episodes are selected. Ties at the cut are broken by position: the earlier
    episode wins, so the result is deterministic.
    """
    if (top_fraction is None) == (top_k is None):
        raise ConfigError(
            f"give exactly one of top_fraction or top_k, got top_fraction={top_fraction!r}, "
            f"top_k={top_k!r}"
        )
    returns = torch.as_tensor(episode_returns)
    if returns.dim() != 1:
        raise ConfigError(
            f"episode_returns must be 1-D (one return per episode), got shape {tuple(returns.shape)}"
        )
    if returns.is_floating_point() and bool(torch.isnan(returns).any()):
        bad = torch.nonzero(torch.isnan(returns)).flatten().tolist()
        raise ConfigError(f"episode_returns must not be NaN; NaN at episode indices {bad}")
    n = returns.numel()
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ConfigError(f"top_k must be an integer >= 1, got {top_k!r}")
        k = min(top_k, n)
    else:
        fraction = _exact_fraction("top_fraction", top_fraction, low_open=True)
        k = math.ceil(n * fraction)
    # A stable descending sort keeps equal returns in their original order -> earlier wins ties.
    order = torch.sort(returns, descending=True, stable=True).indices
    mask = torch.zeros(n, dtype=torch.bool, device=returns.device)
    mask[order[:k]] = True
    return mask
