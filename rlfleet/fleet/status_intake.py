"""What the roles tell the launcher: their status links read, decoded and handed on.

Local roles dial the launcher's status socket (:class:`StatusLinks` reads every accepted link);
roles on other hosts report through the run's Redis event list (:func:`take_remote_events`).
Both count what they refuse -- a malformed message, or a well-formed one with wrong fields -- and
leave the last refusal in the run report; neither lets a bad message stop the launcher.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection, wait
from typing import Any

from rlfleet.errors import CodecError
from rlfleet.fleet.report import RunReport
from rlfleet.transport.codec import decode

__all__ = ["Handler", "StatusLinks", "take_remote_events"]

#: ``handle(conn, kind, meta)``: what the launcher does with one decoded status message.
Handler = Callable[[Connection, str, dict[str, Any]], None]


class StatusLinks:
    """The status links of this host's roles, accepted on one thread and read on another.

    Args:
        report: where refusals are noted (``last_role_error``).
        handle: called for every decoded message; a ``KeyError``/``TypeError``/``ValueError``
            it raises counts the message as rejected.
    """

    def __init__(self, report: RunReport, handle: Handler) -> None:
        self.report = report
        self.handle = handle
        self.rejected = 0
        self.links: dict[Connection, tuple[str, int]] = {}
        self._pending: list[Connection] = []
        self._pending_lock = threading.Lock()

    def on_connect(self, conn: Connection) -> None:
        """A role dialled in (called by the accept loop's thread)."""
        with self._pending_lock:
            self._pending.append(conn)

    def name(self, conn: Connection, role: str, index: int) -> None:
        """Which role a link belongs to, once it said hello."""
        self.links[conn] = (role, index)

    def read(self, timeout: float) -> None:
        """Handle what arrived on any link within ``timeout`` seconds; drop closed links."""
        with self._pending_lock:
            pending, self._pending = self._pending, []
        for conn in pending:
            self.links[conn] = ("unknown", -1)
        if not self.links:
            time.sleep(timeout)
            return
        for conn in wait(list(self.links), timeout):
            try:
                raw = conn.recv_bytes()  # type: ignore[union-attr]
            except (EOFError, OSError):
                self.links.pop(conn, None)  # type: ignore[arg-type]
                continue
            try:
                message = decode(raw)
            except CodecError as exc:
                self.rejected += 1
                self.report.last_role_error = f"rejected status message: {exc}"
                continue
            try:
                self.handle(conn, message.kind, message.meta)  # type: ignore[arg-type]
            except (KeyError, TypeError, ValueError) as exc:  # well-formed, wrong fields
                self.rejected += 1
                self.report.last_role_error = f"rejected {message.kind}: {exc!r}"


def take_remote_events(raws: Iterable[bytes], report: RunReport) -> int:
    """Remote roles' ``actor_stats`` and ``error`` messages into ``report``; returns how many
    were rejected."""
    rejected = 0
    for raw in raws:
        try:
            message = decode(raw, kinds={"actor_stats", "error"})
        except CodecError as exc:
            rejected += 1
            report.last_role_error = f"rejected remote status message: {exc}"
            continue
        member = str(message.meta.get("member", "?"))
        if message.kind == "actor_stats":
            try:
                report.on_actor_stats((f"remote:{member}", 0), message.meta)
            except (KeyError, TypeError, ValueError) as exc:  # well-formed, wrong fields
                rejected += 1
                report.last_role_error = f"rejected remote actor_stats: {exc!r}"
        else:
            report.last_role_error = f"remote {member}: {message.meta.get('message')}"
    return rejected
