"""Pure functions on arrays and tensors: targets, losses, returns. No processes, no I/O."""

from rlfleet.math.dqfd import (
    best_episodes_mask,
    expert_batch_split,
    l2_regularization,
    large_margin_loss,
    masked_mean,
    temporal_consistency_loss,
    transformed_double_q_target,
    value_rescale,
    value_rescale_inverse,
)
from rlfleet.math.dqn import double_q_target, huber, td_errors, weighted_huber_loss
from rlfleet.math.policy_losses import (
    KICKSTART_SCHEDULES,
    action_log_probs,
    baseline_loss,
    distillation_loss,
    entropy_loss,
    kickstart_weight,
    policy_gradient_loss,
)
from rlfleet.math.vtrace import (
    VTraceFromLogitsReturns,
    VTraceReturns,
    vtrace_from_importance_weights,
    vtrace_from_logits,
)

__all__ = [
    "best_episodes_mask",
    "expert_batch_split",
    "l2_regularization",
    "large_margin_loss",
    "masked_mean",
    "temporal_consistency_loss",
    "transformed_double_q_target",
    "value_rescale",
    "value_rescale_inverse",
    "KICKSTART_SCHEDULES",
    "VTraceFromLogitsReturns",
    "VTraceReturns",
    "action_log_probs",
    "baseline_loss",
    "distillation_loss",
    "double_q_target",
    "entropy_loss",
    "huber",
    "kickstart_weight",
    "policy_gradient_loss",
    "td_errors",
    "vtrace_from_importance_weights",
    "vtrace_from_logits",
    "weighted_huber_loss",
]
