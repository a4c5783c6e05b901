"""The interfaces roles see: where their messages go, where parameters come from, how they talk
to whoever supervises them. Local (:mod:`rlfleet.transport.local`) and Redis
(:mod:`rlfleet.transport.redis`) implement them; the fleet decides which one a role gets, so
actor, learner and evaluator code never knows how its bytes travel.

Everything that crosses a port is codec bytes (:mod:`rlfleet.transport.codec`) or a flat float32
parameter vector with a version: never a pickle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from rlfleet.transport.codec import Message

# Commands a supervisor sends down a status link.
CMD_STOP = "stop"
CMD_FINAL_EVAL = "final_eval"
CMD_CHECKPOINT = "checkpoint"


class Outbox(Protocol):
    """Where a role sends messages (experience, batches). ``push`` may block for backpressure;
    outboxes that buffer across outages expose ``dropped`` and ``backlog`` counts."""

    def push(self, payload: bytes) -> Any: ...


class Inbox(Protocol):
    """Where messages arrive, decoded and checked; ``rejected`` counts what failed either."""

    rejected: int

    def pull(self, timeout: float | None, max_messages: int = 64) -> list[Message]: ...


class ParamSource(Protocol):
    """Versioned parameters, read side: copies into ``out`` only when newer than ``have_version``
    and returns the new version (else None)."""

    def fetch_if_newer(self, have_version: int, out: np.ndarray) -> int | None: ...


class ParamSink(Protocol):
    """Versioned parameters, write side."""

    def publish(self, flat: np.ndarray, version: int) -> None: ...


class StatusLink(Protocol):
    """A role's line to its supervisor: reports up (small codec maps), commands down."""

    def send(self, kind: str, **meta: Any) -> None: ...

    def poll_command(self, timeout: float = 0.0) -> str | None: ...


@dataclass
class RoleEnds:
    """What one role is handed: its ends of the data plane, and how to let go of them.

    ``store`` is set for a learner whose batches come from a store elsewhere (a replay service)
    instead of its own inbox."""

    params: Any = None
    outbox: Any = None
    inbox: Any = None
    store: Any = None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Release in reverse order of acquisition; a failure here must not mask the role's."""
        for closer in reversed(self.closers):
            try:
                closer()
            except Exception:
                pass


@dataclass
class ServiceEnds:
    """What a service at the memory node (a replay service) is handed: the actors' messages,
    the learner's messages (priority updates, demands), where its batches go, and how it keeps
    (and gives up) its exclusive place.

    ``keepalive()`` refreshes membership and the claim: False means another instance took the
    run over (stop serving), None that it is unknown (broker unreachable). ``batches.push``
    returns False while the batch queue is full."""

    experience: Inbox
    updates: Inbox
    batches: Outbox
    keepalive: Callable[[], bool | None] = lambda: True
    release: Callable[[], None] = lambda: None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for closer in reversed(self.closers):
            try:
                closer()
            except Exception:
                pass
