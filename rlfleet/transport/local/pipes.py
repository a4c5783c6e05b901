"""Experience over local pipes and sockets: codec bytes with ``send_bytes``/``recv_bytes``, never
pickled. A connection is a bounded queue: when the reader falls behind, the kernel buffer fills and
the writer blocks, which is the backpressure the learner needs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np

from rlfleet.errors import TransportError
from rlfleet.transport.codec import Message, encode
from rlfleet.transport.schema import ContentCheck, MessageGate, Schema


class PipeOutbox:
    """Write end of a bounded pipe carrying codec messages."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def push(self, payload: bytes) -> None:
        """Send one encoded message; blocks while the pipe is full (backpressure)."""
        try:
            self._conn.send_bytes(payload)
        except (BrokenPipeError, ConnectionResetError, OSError) as exc:
            raise TransportError(f"the reader of this pipe is gone: {exc}") from exc

    def send(self, kind: str, arrays: dict[str, np.ndarray] | None = None, **meta: Any) -> None:
        """Encode and push a message."""
        self.push(encode(kind, arrays, meta))

    def close(self) -> None:
        self._conn.close()


class PipeInbox:
    """Read ends of many pipes; every message passes the :class:`MessageGate` (codec, kinds,
    metadata counters, the ``expect`` schema, the ``check`` of contents), which counts what it
    rejects by reason (``last_error`` says why)."""

    def __init__(
        self,
        conns: Iterable[Connection] = (),
        kinds: set[str] | None = None,
        max_bytes: int = 1 << 29,
        expect: Schema | None = None,
        check: ContentCheck | None = None,
    ) -> None:
        self._conns: list[Connection] = list(conns)
        self._conns_lock = threading.Lock()  # writers may join from an accept thread
        self.gate = MessageGate(kinds, max_bytes, expect, check)

    @property
    def rejected(self) -> int:
        return self.gate.rejected

    @property
    def received(self) -> int:
        return self.gate.received

    @property
    def bytes_received(self) -> int:
        return self.gate.bytes_received

    @property
    def last_error(self) -> str:
        return self.gate.last_error

    def add(self, conn: Connection) -> None:
        """Start reading another pipe (a restarted or newly joined writer)."""
        with self._conns_lock:
            self._conns.append(conn)

    def remove_closed(self) -> None:
        with self._conns_lock:
            self._conns = [c for c in self._conns if not c.closed]

    @property
    def num_sources(self) -> int:
        return len(self._conns)

    def pull(self, timeout: float | None, max_messages: int = 64) -> list[Message]:
        """Messages ready within ``timeout`` seconds (blocking wait, no busy polling)."""
        with self._conns_lock:
            conns = list(self._conns)
        if not conns:
            if timeout:
                time.sleep(timeout)
            return []
        out: list[Message] = []
        for conn in wait(conns, timeout):
            while len(out) < max_messages:
                try:
                    raw = conn.recv_bytes()  # type: ignore[union-attr]
                except (EOFError, OSError):
                    conn.close()  # type: ignore[union-attr]
                    break
                message = self.gate.admit(raw)
                if message is not None:
                    out.append(message)
                if not conn.poll():  # type: ignore[union-attr]
                    break
        self.remove_closed()
        return out
