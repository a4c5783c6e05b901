"""Demonstration files: the on-disk format, its validating loader, replay transitions, recording.

One module per job: :mod:`.format` (the file format specification, the
:class:`Demonstrations` container and :func:`make_demonstrations`), :mod:`.transitions` (1-step
and n-step replay items, :func:`demo_fields`), :mod:`.checks` (structural validation) and
:mod:`.files` (:func:`write_demos`, :func:`load_demos`). Every name is importable from here.

Layer: replay. numpy only: no torch and no environments; recording episodes from a policy is
:func:`rlfleet.envs.record.record_episodes`.
"""

from __future__ import annotations

from rlfleet.replay.demos.files import load_demos, write_demos
from rlfleet.replay.demos.format import (
    DEMO_FORMAT,
    DEMO_FORMAT_VERSION,
    Demonstrations,
    make_demonstrations,
    space_summary,
)
from rlfleet.replay.demos.transitions import demo_fields

__all__ = [
    "DEMO_FORMAT",
    "DEMO_FORMAT_VERSION",
    "Demonstrations",
    "demo_fields",
    "load_demos",
    "make_demonstrations",
    "space_summary",
    "write_demos",
]
