"""Schedules and option names of the policy losses, in plain Python: configs validate against
them without importing torch.

* :data:`REDUCTIONS`: the ``reduction`` arguments of :mod:`rlfleet.math.policy_losses`;
* :func:`kickstart_weight`: the kickstarting weight ``lambda_k`` (Schmitt et al. 2018) by
  learner step, for the :data:`KICKSTART_SCHEDULES`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real

from rlfleet.errors import ConfigError

REDUCTIONS = ("sum", "mean")
"""Valid ``reduction`` arguments of the losses."""

KICKSTART_SCHEDULES = ("constant", "linear", "step")
"""Valid ``schedule`` arguments of :func:`kickstart_weight`."""


def _check_nonnegative(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
    if value < 0:
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def kickstart_weight(
    step: int,
    schedule: str,
    lambda0: float,
    decay_steps: int | None = None,
    boundaries: Sequence[int] = (),
    values: Sequence[float] = (),
) -> float:
    """The kickstarting weight ``lambda_k`` at learner step ``step``.

    Schedules (arguments a schedule does not use are ignored):

    - ``"constant"``: ``lambda0`` at every step.
    - ``"linear"``: ``lambda0 * max(0, 1 - step / decay_steps)``: decays linearly to exactly
      ``0`` at ``decay_steps`` and stays there, so the student can eventually surpass the teacher.
    - ``"step"``: ``lambda0`` before ``boundaries[0]``, then ``values[i]`` from ``boundaries[i]``
      (inclusive) on. ``boundaries`` strictly increasing and ``> 0``; ``values`` the same length,
      each ``>= 0`` and non-increasing from ``lambda0`` (the weight only ever drops).

    Raises:
        ConfigError: an unknown schedule (the message lists the valid ones), a negative step, a
            negative or non-finite weight, a missing or non-positive ``decay_steps`` for
            ``"linear"``, or inconsistent ``boundaries`` / ``values`` for ``"step"``.
    """
    if schedule not in KICKSTART_SCHEDULES:
        raise ConfigError(
            f"unknown kickstart schedule {schedule!r}; valid: {', '.join(KICKSTART_SCHEDULES)}"
        )
    if isinstance(step, bool) or not isinstance(step, Integral) or step < 0:
        raise ConfigError(f"step must be an integer >= 0, got {step!r}")
    lam0 = _check_nonnegative("lambda0", lambda0)

    if schedule == "constant":
        return lam0

    if schedule == "linear":
        if (
            isinstance(decay_steps, bool)
            or not isinstance(decay_steps, Integral)
            or decay_steps <= 0
        ):
            raise ConfigError(
                f"schedule 'linear' needs decay_steps, an integer > 0; got {decay_steps!r}"
            )
        return lam0 * max(0.0, 1.0 - int(step) / int(decay_steps))

    # schedule == "step"
    bounds = list(boundaries)
    levels = [_check_nonnegative(f"values[{i}]", v) for i, v in enumerate(values)]
    if not bounds:
        raise ConfigError("schedule 'step' needs at least one boundary (the step of the drop)")
    if len(levels) != len(bounds):
        raise ConfigError(
            f"schedule 'step' needs one value per boundary: got {len(bounds)} boundaries"
            f" {bounds} and {len(levels)} values {levels}"
        )
    for i, b in enumerate(bounds):
        if isinstance(b, bool) or not isinstance(b, Integral) or b <= 0:
            raise ConfigError(f"boundaries[{i}] must be an integer > 0, got {b!r}")
        if i > 0 and b <= bounds[i - 1]:
            raise ConfigError(f"boundaries must be strictly increasing, got {bounds}")
    previous = lam0
    for i, level in enumerate(levels):
        if level > previous:
            raise ConfigError(
                f"values[{i}] = {level} exceeds the level before it ({previous}); the kickstart"
                f" weight may only drop (lambda0 = {lam0}, values = {levels})"
            )
        previous = level

    weight = lam0
    for b, level in zip(bounds, levels, strict=True):
        if step >= b:
            weight = level
    return weight
