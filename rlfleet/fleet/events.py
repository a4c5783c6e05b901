"""A run's evaluations and checkpoints handed to the caller's ``on_event`` hook.

The Python API's early stopping and tuning (``on_event(kind, info) -> stop reason or None``) see
each evaluation's row and each checkpoint as the launcher learns of them; the first stop reason
the hook returns is kept for the launcher's supervision loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rlfleet.fleet.report import RunReport, RunResult

__all__ = ["EventHook", "OnEvent"]

#: ``on_event(kind, info)``: ``"evaluation"`` or ``"checkpoint"``; a non-empty string stops.
OnEvent = Callable[[str, dict[str, Any]], "str | None"]


class EventHook:
    """Status messages -> ``on_event`` calls; :attr:`stop` is the first stop reason returned."""

    def __init__(
        self,
        on_event: OnEvent | None,
        report: RunReport,
        result: RunResult,
        wall: Callable[[], float],
    ) -> None:
        self.on_event = on_event
        self.report = report
        self.result = result
        self.wall = wall
        self.stop: str | None = None

    def __call__(self, kind: str, meta: dict[str, Any]) -> None:
        """Pass an ``eval``, ``checkpoint`` or final (``stopped``) message on, if it is one."""
        if self.on_event is None:
            return
        if kind == "eval" and self.report.last_eval is not None:
            info: dict[str, Any] = {**self.report.last_eval, "solved": self.result.solved}
            name = "evaluation"
        elif kind in ("checkpoint", "stopped") and meta.get("path"):
            info = {
                "path": str(meta["path"]),
                "updates": self.report.updates(),
                "env_steps": self.report.env_steps(),
                "wall_s": round(self.wall(), 3),
                "final": kind == "stopped",
            }
            name = "checkpoint"
        else:
            return
        reason = self.on_event(name, info)
        if reason and self.stop is None:
            self.stop = str(reason)
