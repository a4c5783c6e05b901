"""Pure functions on arrays and tensors: targets, losses, returns. No processes, no I/O."""

from rlfleet.math.dqn import double_q_target, huber, td_errors, weighted_huber_loss

__all__ = ["double_q_target", "huber", "td_errors", "weighted_huber_loss"]
