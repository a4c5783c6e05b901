"""V-trace off-policy value targets and policy-gradient advantages (IMPALA, Espeholt et al. 2018).

All tensors are **time-major**: ``[T, B]`` for per-step quantities (any further batch dimensions
after ``T`` are allowed, as long as every per-step tensor has the same shape), ``[B]`` for the
bootstrap value ``V(x_T)``. With ``rho_t = pi(a_t|x_t) / mu(a_t|x_t)``:

    rho_t   = min(rho_bar, rho_t)                 (clip_rho_threshold)
    c_t     = lambda * min(c_bar, rho_t)          (clip_c_threshold, lambda_)
    delta_t = rho_t * (r_t + gamma_t * V(x_{t+1}) - V(x_t))
    v_s     = V(x_s) + sum_{t=s}^{T-1} (prod_{k=s}^{t-1} gamma_k c_k) * delta_t

computed backwards as ``v_s - V(x_s) = delta_s + gamma_s c_s (v_{s+1} - V(x_{s+1}))`` with
``V(x_T) = v_T = bootstrap_value``. The policy-gradient advantage has its own clip:

    A_s = min(rho_pg_bar, rho_s) * (r_s + gamma_s * v_{s+1} - V(x_s))

``gamma_t`` must already include termination (``0`` after a terminal step), so an episode boundary
inside the unroll cuts both the sum and the bootstrap. The returned targets carry **no gradient**:
they are regression targets and advantage weights, never something to differentiate through.
"""

from __future__ import annotations

from numbers import Real
from typing import NamedTuple

import torch

from rlfleet.errors import ConfigError
from rlfleet.math.policy_losses import action_log_probs


class VTraceReturns(NamedTuple):
    """Output of :func:`vtrace_from_importance_weights` (both ``[T, B]``, no gradient)."""

    vs: torch.Tensor
    """V-trace value targets ``v_s`` (the baseline regresses onto these)."""
    pg_advantages: torch.Tensor
    """Clipped-importance-weighted advantages for the policy-gradient loss."""


class VTraceFromLogitsReturns(NamedTuple):
    """Output of :func:`vtrace_from_logits`."""

    vs: torch.Tensor
    """V-trace value targets ``[T, B]``, no gradient."""
    pg_advantages: torch.Tensor
    """Policy-gradient advantages ``[T, B]``, no gradient."""
    log_rhos: torch.Tensor
    """``log pi(a_t|x_t) - log mu(a_t|x_t)`` ``[T, B]``, unclipped (e.g. for clip-fraction metrics).
    Keeps the autograd graph of ``target_logits``; detach it before logging."""
    behaviour_action_log_probs: torch.Tensor
    """``log mu(a_t|x_t)`` ``[T, B]``."""
    target_action_log_probs: torch.Tensor
    """``log pi(a_t|x_t)`` ``[T, B]``, *with* gradient to ``target_logits`` (the policy-gradient
    loss needs it)."""


def _check_threshold(name: str, value: float | None) -> None:
    # None is the documented "no clipping"; anything else must be a positive number, because a
    # threshold <= 0 (or NaN) would zero or poison every importance weight.
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, Real) or not value > 0:
        raise ConfigError(f"{name} must be a number > 0 or None (no clipping), got {value!r}")


def _check_lambda(lambda_: float) -> None:
    if isinstance(lambda_, bool) or not isinstance(lambda_, Real) or not (0.0 <= lambda_ <= 1.0):
        raise ConfigError(f"lambda_ must be a number in [0, 1], got {lambda_!r}")


def _check_float_tensor(name: str, x: object) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ConfigError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ConfigError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def vtrace_from_importance_weights(
    log_rhos: torch.Tensor,
    discounts: torch.Tensor,
    rewards: torch.Tensor,
    values: torch.Tensor,
    bootstrap_value: torch.Tensor,
    clip_rho_threshold: float | None = 1.0,
    clip_pg_rho_threshold: float | None = 1.0,
    clip_c_threshold: float | None = 1.0,
    lambda_: float = 1.0,
) -> VTraceReturns:
    """V-trace targets and policy-gradient advantages from log importance ratios.

    Args:
        log_rhos: ``log pi(a_t|x_t) - log mu(a_t|x_t)``, ``[T, B]``.
        discounts: ``gamma_t``, ``[T, B]``, already ``0`` where step ``t`` ended the episode
            (may differ per batch element).
        rewards: ``r_t``, ``[T, B]``.
        values: ``V(x_t)`` under the learner's baseline, ``[T, B]``.
        bootstrap_value: ``V(x_T)``, ``[B]``.
        clip_rho_threshold: ``rho_bar`` for the value targets; ``None`` = no clipping.
        clip_pg_rho_threshold: ``rho_bar`` for the policy-gradient advantage; ``None`` = no clip.
        clip_c_threshold: ``c_bar`` for the trace coefficients; ``None`` = no clipping.
        lambda_: trace-cutting factor in ``[0, 1]`` multiplying every ``c_t``.

    Returns:
        :class:`VTraceReturns` ``(vs, pg_advantages)``, both ``[T, B]`` with the dtype of the
        (promoted) inputs and no gradient.

    Raises:
        ConfigError: mismatched shapes, an empty unroll, non-float tensors, a threshold <= 0,
            or ``lambda_`` outside ``[0, 1]``.
    """
    log_rhos = _check_float_tensor("log_rhos", log_rhos)
    discounts = _check_float_tensor("discounts", discounts)
    rewards = _check_float_tensor("rewards", rewards)
    values = _check_float_tensor("values", values)
    bootstrap_value = _check_float_tensor("bootstrap_value", bootstrap_value)
    _check_threshold("clip_rho_threshold", clip_rho_threshold)
    _check_threshold("clip_pg_rho_threshold", clip_pg_rho_threshold)
    _check_threshold("clip_c_threshold", clip_c_threshold)
    _check_lambda(lambda_)

    if values.dim() < 1 or values.shape[0] == 0:
        raise ConfigError(
            f"values must be time-major [T, B] with T >= 1, got shape {tuple(values.shape)}"
        )
    for name, x in (("log_rhos", log_rhos), ("discounts", discounts), ("rewards", rewards)):
        if x.shape != values.shape:
            raise ConfigError(
                f"{name} has shape {tuple(x.shape)}; it must match values {tuple(values.shape)}"
            )
    if bootstrap_value.shape != values.shape[1:]:
        raise ConfigError(
            f"bootstrap_value has shape {tuple(bootstrap_value.shape)}; it must be values.shape[1:]"
            f" = {tuple(values.shape[1:])}"
        )

    # The targets are constants for the optimiser; computing them without a graph also keeps the
    # Python loop below from building a T-deep autograd chain.
    with torch.no_grad():
        rhos = torch.exp(log_rhos)
        clipped_rhos = rhos if clip_rho_threshold is None else rhos.clamp(max=clip_rho_threshold)
        cs = rhos if clip_c_threshold is None else rhos.clamp(max=clip_c_threshold)
        cs = lambda_ * cs

        values_tp1 = torch.cat([values[1:], bootstrap_value.unsqueeze(0)], dim=0)
        deltas = clipped_rhos * (rewards + discounts * values_tp1 - values)

        # Backward recursion; a cumprod-based closed form would divide by products that hit 0 at
        # terminal steps, the loop is exact and T is an unroll length (tens of steps).
        acc = torch.zeros_like(deltas[0])
        vs_minus_v = torch.empty_like(deltas)
        decay = discounts * cs
        for t in range(deltas.shape[0] - 1, -1, -1):
            acc = deltas[t] + decay[t] * acc
            vs_minus_v[t] = acc
        vs = vs_minus_v + values

        vs_tp1 = torch.cat([vs[1:], bootstrap_value.unsqueeze(0).to(vs.dtype)], dim=0)
        pg_rhos = rhos if clip_pg_rho_threshold is None else rhos.clamp(max=clip_pg_rho_threshold)
        pg_advantages = pg_rhos * (rewards + discounts * vs_tp1 - values)

    return VTraceReturns(vs=vs, pg_advantages=pg_advantages)


def vtrace_from_logits(
    behaviour_logits: torch.Tensor,
    target_logits: torch.Tensor,
    actions: torch.Tensor,
    discounts: torch.Tensor,
    rewards: torch.Tensor,
    values: torch.Tensor,
    bootstrap_value: torch.Tensor,
    clip_rho_threshold: float | None = 1.0,
    clip_pg_rho_threshold: float | None = 1.0,
    clip_c_threshold: float | None = 1.0,
    lambda_: float = 1.0,
) -> VTraceFromLogitsReturns:
    """V-trace for categorical policies given the behaviour and target logits.

    ``log_rhos = log_softmax(target_logits)[a] - log_softmax(behaviour_logits)[a]`` is fed to
    :func:`vtrace_from_importance_weights`, so both entry points agree exactly.

    Args:
        behaviour_logits: actor (mu) logits, ``[T, B, A]``.
        target_logits: learner (pi) logits, ``[T, B, A]``.
        actions: integer actions taken, ``[T, B]``, each in ``[0, A)``.
        discounts, rewards, values, bootstrap_value, clip_*, lambda_: as in
            :func:`vtrace_from_importance_weights`.

    Returns:
        :class:`VTraceFromLogitsReturns`; ``target_action_log_probs`` keeps its gradient.

    Raises:
        ConfigError: mismatched shapes, bad actions, or any error of the other entry point.
    """
    behaviour_logits = _check_float_tensor("behaviour_logits", behaviour_logits)
    target_logits = _check_float_tensor("target_logits", target_logits)
    if behaviour_logits.shape != target_logits.shape:
        raise ConfigError(
            f"behaviour_logits has shape {tuple(behaviour_logits.shape)}; it must match"
            f" target_logits {tuple(target_logits.shape)}"
        )
    behaviour_action_log_probs = action_log_probs(behaviour_logits, actions)
    target_action_log_probs = action_log_probs(target_logits, actions)
    log_rhos = target_action_log_probs - behaviour_action_log_probs
    returns = vtrace_from_importance_weights(
        log_rhos=log_rhos,
        discounts=discounts,
        rewards=rewards,
        values=values,
        bootstrap_value=bootstrap_value,
        clip_rho_threshold=clip_rho_threshold,
        clip_pg_rho_threshold=clip_pg_rho_threshold,
        clip_c_threshold=clip_c_threshold,
        lambda_=lambda_,
    )
    return VTraceFromLogitsReturns(
        vs=returns.vs,
        pg_advantages=returns.pg_advantages,
        log_rhos=log_rhos,
        behaviour_action_log_probs=behaviour_action_log_probs,
        target_action_log_probs=target_action_log_probs,
    )
