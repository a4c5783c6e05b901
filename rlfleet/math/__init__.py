"""Pure functions on arrays and tensors: targets, losses, returns. No processes, no I/O.

Names are loaded on first use (PEP 562), so ``from rlfleet.math.schedules import ...`` -- what
configs validate against -- imports no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the submodule that defines it
_EXPORTS = {
    **dict.fromkeys(
        (
            "best_episodes_mask",
            "expert_batch_split",
            "l2_regularization",
            "large_margin_loss",
            "masked_mean",
            "temporal_consistency_loss",
            "transformed_double_q_target",
            "value_rescale",
            "value_rescale_inverse",
        ),
        "dqfd",
    ),
    **dict.fromkeys(
        (
            "SQUASHES",
            "gaussian_entropy",
            "gaussian_log_prob",
            "squash_to_bounds",
            "squashed_log_prob",
            "tanh_log_det_jacobian",
        ),
        "distributions",
    ),
    **dict.fromkeys(("double_q_target", "huber", "td_errors", "weighted_huber_loss"), "dqn"),
    **dict.fromkeys(("GAEReturns", "gae"), "advantages"),
    **dict.fromkeys(
        (
            "approx_kl",
            "clip_fraction",
            "clipped_surrogate_loss",
            "normalize_advantages",
            "value_loss",
        ),
        "ppo",
    ),
    **dict.fromkeys(("RunningMeanStd",), "running_stats"),
    **dict.fromkeys(
        ("exploration_ladder", "polyak_update_", "smoothed_target_action", "td3_target"), "td3"
    ),
    **dict.fromkeys(
        (
            "action_log_probs",
            "baseline_loss",
            "distillation_loss",
            "entropy_loss",
            "policy_gradient_loss",
        ),
        "policy_losses",
    ),
    **dict.fromkeys(("KICKSTART_SCHEDULES", "REDUCTIONS", "kickstart_weight"), "schedules"),
    **dict.fromkeys(
        (
            "VTraceFromLogitsReturns",
            "VTraceReturns",
            "vtrace_from_importance_weights",
            "vtrace_from_logits",
        ),
        "vtrace",
    ),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rlfleet.math' has no attribute {name!r}")
    return getattr(importlib.import_module(f"rlfleet.math.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return __all__
