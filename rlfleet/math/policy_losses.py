"""Actor-critic losses for IMPALA and the kickstarting distillation term (Schmitt et al. 2018).

Every loss takes categorical logits ``[..., A]`` and per-step tensors ``[...]`` (time-major
``[T, B]`` in the learner) and reduces over **all** steps with ``reduction="sum"`` (default) or
``"mean"``. The default is ``"sum"`` because the IMPALA reference implementation sums over time and
batch and its published hyper-parameters (learning rate, baseline cost 0.5, entropy cost ~0.01,
gradient-norm clip) are tuned against sums; ``"mean"`` makes the scale independent of ``T * B``.

The cost weights (baseline 0.5, entropy ~0.01, kickstarting ``lambda_k``) are applied by the
learner, not here: each function returns the unweighted term.

    total = pg + 0.5 * baseline + 0.01 * entropy + lambda_k * distillation
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rlfleet.errors import ConfigError
from rlfleet.math.schedules import KICKSTART_SCHEDULES, REDUCTIONS, kickstart_weight

__all__ = [
    "KICKSTART_SCHEDULES",
    "REDUCTIONS",
    "action_log_probs",
    "baseline_loss",
    "distillation_loss",
    "entropy_loss",
    "kickstart_weight",
    "policy_gradient_loss",
]


def _reduce(x: torch.Tensor, reduction: str) -> torch.Tensor:
    # Callers validate ``reduction`` with _check_reduction before computing anything.
    return x.sum() if reduction == "sum" else x.mean()


def _check_reduction(reduction: str) -> None:
    # Checked before any arithmetic so a typo fails fast, not after a forward pass.
    if reduction not in REDUCTIONS:
        raise ConfigError(f"unknown reduction {reduction!r}; valid: {', '.join(REDUCTIONS)}")


def _check_logits(name: str, logits: object) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor):
        raise ConfigError(f"{name} must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise ConfigError(f"{name} must be a floating-point tensor, got dtype {logits.dtype}")
    if logits.dim() < 1 or logits.shape[-1] == 0:
        raise ConfigError(
            f"{name} must have a non-empty last (action) dimension, got shape {tuple(logits.shape)}"
        )
    return logits


def action_log_probs(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """``log softmax(logits)[..., a]`` for the taken actions; shape ``actions.shape``.

    Args:
        logits: categorical logits ``[..., A]``.
        actions: integer actions ``[...]`` (``logits.shape[:-1]``), each in ``[0, A)``.

    Raises:
        ConfigError: non-integer actions, a shape mismatch, or an action outside ``[0, A)``.
    """
    logits = _check_logits("logits", logits)
    if not isinstance(actions, torch.Tensor):
        raise ConfigError(f"actions must be a torch.Tensor, got {type(actions).__name__}")
    if actions.is_floating_point() or actions.is_complex() or actions.dtype == torch.bool:
        raise ConfigError(f"actions must be an integer tensor, got dtype {actions.dtype}")
    if actions.shape != logits.shape[:-1]:
        raise ConfigError(
            f"actions has shape {tuple(actions.shape)}; it must be logits.shape[:-1]"
            f" = {tuple(logits.shape[:-1])}"
        )
    num_actions = logits.shape[-1]
    if actions.numel() > 0:
        lo, hi = int(actions.min()), int(actions.max())
        # gather() would fail with an opaque index error (or read garbage on some devices).
        if lo < 0 or hi >= num_actions:
            bad = lo if lo < 0 else hi
            raise ConfigError(
                f"action {bad} is out of range; valid actions are 0..{num_actions - 1}"
            )
    log_pi = F.log_softmax(logits, dim=-1)
    return log_pi.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)


def policy_gradient_loss(
    logits: torch.Tensor,
    actions: torch.Tensor,
    advantages: torch.Tensor,
    reduction: str = "sum",
) -> torch.Tensor:
    """``-sum_s log pi(a_s|x_s) * A_s`` (or the mean), the advantage **detached**.

    Args:
        logits: learner policy logits ``[..., A]``.
        actions: actions taken ``[...]``.
        advantages: e.g. V-trace ``pg_advantages`` ``[...]``; never back-propagated into.
        reduction: ``"sum"`` (IMPALA reference) or ``"mean"`` over all steps.
    """
    _check_reduction(reduction)
    log_pi_a = action_log_probs(logits, actions)
    if not isinstance(advantages, torch.Tensor) or advantages.shape != log_pi_a.shape:
        shape = tuple(advantages.shape) if isinstance(advantages, torch.Tensor) else advantages
        raise ConfigError(
            f"advantages has shape {shape}; it must match actions {tuple(log_pi_a.shape)}"
        )
    return _reduce(-log_pi_a * advantages.detach(), reduction)


def baseline_loss(vs: torch.Tensor, values: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """``0.5 * sum_s (v_s - V(x_s))^2`` (or ``0.5 *`` the mean); the target ``vs`` is detached.

    The ``0.5`` belongs to the loss itself (its gradient is then ``V - v_s``); the IMPALA
    *baseline cost* (also 0.5) is a separate weight the learner applies on top.
    """
    _check_reduction(reduction)
    if not isinstance(vs, torch.Tensor) or not isinstance(values, torch.Tensor):
        raise ConfigError("vs and values must both be torch.Tensor")
    if vs.shape != values.shape:
        raise ConfigError(
            f"vs has shape {tuple(vs.shape)}; it must match values {tuple(values.shape)}"
        )
    return 0.5 * _reduce((vs.detach() - values) ** 2, reduction)


def entropy_loss(logits: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """Negative entropy ``sum_s sum_a pi(a|x_s) log pi(a|x_s)`` (or the mean over steps).

    Minimising it *raises* the entropy; weight it by the entropy cost (~0.01).
    """
    _check_reduction(reduction)
    logits = _check_logits("logits", logits)
    log_pi = F.log_softmax(logits, dim=-1)
    # exp(log_pi) * log_pi is 0 * finite for a vanishing action, never 0 * -inf = NaN.
    neg_entropy = (log_pi.exp() * log_pi).sum(dim=-1)
    return _reduce(neg_entropy, reduction)


def distillation_loss(
    teacher_logits: torch.Tensor,
    student_logits: torch.Tensor,
    reduction: str = "sum",
) -> torch.Tensor:
    """Kickstarting cross-entropy ``H(pi_T || pi_S) = -sum_a pi_T(a|x) log pi_S(a|x)`` per step.

    Equals ``KL(pi_T || pi_S) + H(pi_T)``; since the teacher is **detached**, its gradient is the
    KL's, and it is minimal (equal to the teacher's entropy) when the student matches the teacher.
    The teacher may be a different network; only the action dimension must agree.

    Args:
        teacher_logits: ``[..., A]``, evaluated on the student's own trajectories.
        student_logits: ``[..., A]``.
        reduction: ``"sum"`` or ``"mean"`` over steps.
    """
    _check_reduction(reduction)
    teacher_logits = _check_logits("teacher_logits", teacher_logits)
    student_logits = _check_logits("student_logits", student_logits)
    if teacher_logits.shape != student_logits.shape:
        raise ConfigError(
            f"teacher_logits has shape {tuple(teacher_logits.shape)}; it must match"
            f" student_logits {tuple(student_logits.shape)}"
        )
    teacher_probs = F.softmax(teacher_logits.detach(), dim=-1)
    student_log_probs = F.log_softmax(student_logits, dim=-1)
    cross_entropy = -(teacher_probs * student_log_probs).sum(dim=-1)
    return _reduce(cross_entropy, reduction)
