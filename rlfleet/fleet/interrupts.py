"""Ctrl-C while a fleet shuts down: the roles are saving (the learner's last checkpoint, the
final evaluation), and a second Ctrl-C must not kill them half-way.

:class:`InterruptHold` is a context manager: while it is active, SIGINT no longer raises
``KeyboardInterrupt`` in the launcher; each press is counted and announced instead, and the
shutdown decides what a press may cut short (the final evaluation, not the checkpoint).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any


class InterruptHold:
    """Counts Ctrl-C presses instead of raising while active (``with InterruptHold(...):``).

    ``on_press(count)`` is called for each press (from the signal handler: keep it short). Only
    the main thread can own signal handlers; elsewhere (a launcher running in a thread of a
    test) the hold does nothing and Ctrl-C is not delivered to it anyway.
    """

    def __init__(self, on_press: Callable[[int], None] | None = None) -> None:
        self.on_press = on_press
        self.presses = 0
        self._previous: Any = None
        self._active = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.presses += 1
        if self.on_press is not None:
            self.on_press(self.presses)

    def __enter__(self) -> InterruptHold:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._active = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._active:
            signal.signal(signal.SIGINT, self._previous)
            self._active = False


def shutdown_notice(saved: threading.Event) -> Callable[[int], None]:
    """What a Ctrl-C during a shutdown prints (stderr: also under ``--quiet``): before the
    learner's last checkpoint (``saved`` not set), that it is awaited; after it, that the
    final evaluation is skipped."""

    def on_press(presses: int) -> None:
        what = (
            "skipping the final evaluation"
            if saved.is_set()
            else "waiting for the learner's last checkpoint (Ctrl-C again after it skips the "
            "final evaluation)"
        )
        print(f"rlfleet: already stopping; {what}", file=sys.stderr, flush=True)

    return on_press
