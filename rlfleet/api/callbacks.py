"""Callbacks on a run's events, called in the process that called :func:`rlfleet.train`.

Two events: an evaluation (:class:`Evaluation`, every ``eval.interval_s``) and a checkpoint
(:class:`Checkpoint`, every ``run.checkpoint_interval_s`` and the final one). A callback is an
object with either or both methods::

    class Log(rlfleet.Callback):
        def on_evaluation(self, ev):
            print(ev.env_steps, ev.return_mean)

A method that returns ``True`` (or a non-empty string, used as the stop reason) stops the run:
the fleet shuts down in order as on any other stop (checkpoint, final evaluation). A callback
that raises also stops the run; :func:`rlfleet.train` re-raises its exception once the run
has shut down. :class:`EarlyStopping` is the usual one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Callback", "Checkpoint", "EarlyStopping", "Evaluation", "EventDispatcher"]


@dataclass(frozen=True)
class Evaluation:
    """One periodic evaluation: greedy episodes on parameter ``version``."""

    wall_s: float
    env_steps: int
    updates: int
    version: int
    return_mean: float
    return_std: float
    #: whether the run's solve criterion (eval.solve_threshold, solve_consecutive) is met
    solved: bool


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint the learner wrote (``final``: the one written as the run stops)."""

    path: str
    updates: int
    env_steps: int
    wall_s: float
    final: bool


class Callback:
    """Base class with no-op hooks; override either. Return ``True`` or a reason to stop."""

    def on_evaluation(self, evaluation: Evaluation) -> bool | str | None:
        return None

    def on_checkpoint(self, checkpoint: Checkpoint) -> bool | str | None:
        return None


class EarlyStopping(Callback):
    """Stop when the evaluation mean return has not improved by more than ``min_delta`` in
    ``patience`` evaluations, or once it reaches ``target`` (if given)."""

    def __init__(
        self, patience: int = 10, min_delta: float = 0.0, target: float | None = None
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be an integer >= 1, got {patience!r}")
        if not math.isfinite(min_delta) or min_delta < 0:
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
        self.patience, self.min_delta, self.target = patience, float(min_delta), target
        self.best = -math.inf
        self.since_best = 0

    def on_evaluation(self, evaluation: Evaluation) -> bool | str | None:
        if self.target is not None and evaluation.return_mean >= self.target:
            return f"early stop: return {evaluation.return_mean:.3g} >= target {self.target}"
        if evaluation.return_mean > self.best + self.min_delta:
            self.best, self.since_best = evaluation.return_mean, 0
            return None
        self.since_best += 1
        if self.since_best >= self.patience:
            return f"early stop: no improvement in {self.patience} evaluations"
        return None


def _reason(value: Any, name: str) -> str | None:
    if value is None or value is False:
        return None
    if value is True:
        return f"stopped by {name}"
    if isinstance(value, str):
        return value or None
    raise TypeError(f"{name} returned {value!r}; a callback returns None, a bool or a stop reason")


class EventDispatcher:
    """The fleet's ``on_event`` hook for a list of callbacks. The first exception a callback
    raises is kept in :attr:`error` (the run stops with reason ``"callback error"``)."""

    def __init__(self, callbacks: Sequence[Any]) -> None:
        for cb in callbacks:
            if not (hasattr(cb, "on_evaluation") or hasattr(cb, "on_checkpoint")):
                raise TypeError(
                    f"callback {cb!r} has neither on_evaluation nor on_checkpoint; subclass "
                    "rlfleet.Callback"
                )
        self.callbacks = list(callbacks)
        self.error: BaseException | None = None

    def __call__(self, kind: str, info: dict[str, Any]) -> str | None:
        if self.error is not None:
            return "callback error"
        if kind == "evaluation":
            event: Any = Evaluation(
                wall_s=float(info["wall_s"]),
                env_steps=int(info["env_steps"]),
                updates=int(info["updates"]),
                version=int(info["version"]),
                return_mean=float(info["return_mean"]),
                return_std=float(info["return_std"]),
                solved=bool(info.get("solved", False)),
            )
            method = "on_evaluation"
        elif kind == "checkpoint":
            event = Checkpoint(
                path=str(info["path"]),
                updates=int(info["updates"]),
                env_steps=int(info["env_steps"]),
                wall_s=float(info["wall_s"]),
                final=bool(info["final"]),
            )
            method = "on_checkpoint"
        else:
            return None
        stop = None
        for cb in self.callbacks:
            hook = getattr(cb, method, None)
            if hook is None:
                continue
            try:
                reason = _reason(hook(event), f"{type(cb).__name__}.{method}")
            except Exception as exc:  # kept and re-raised by train() after the shutdown
                self.error = exc
                return "callback error"
            stop = stop or reason
        return stop
