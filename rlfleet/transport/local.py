"""Local transport: processes on one host.

* Experience and status travel as codec bytes over one-way OS pipes
  (``multiprocessing.Pipe(duplex=False)``, ``send_bytes``/``recv_bytes``: no pickling). A pipe is a
  bounded queue: when the reader falls behind, the kernel buffer fills and the writer blocks,
  which is the backpressure Ape-X needs.
* Parameters live in one shared-memory block guarded by a sequence lock: the learner writes a
  flat float32 vector and a version; actors read the version (one integer load) and copy the
  vector only when it is newer. A torn read is detected by the sequence number and retried.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from multiprocessing import shared_memory
from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np

from rlfleet.errors import CodecError, TransportError
from rlfleet.transport.codec import Message, decode, encode

_HEADER_BYTES = 64  # seq, version, nbytes, layout signature, padding to a cache line


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
    """Read ends of many pipes; decodes and validates, counting what it rejects."""

    def __init__(
        self,
        conns: Iterable[Connection] = (),
        kinds: set[str] | None = None,
        max_bytes: int = 1 << 29,
    ) -> None:
        self._conns: list[Connection] = list(conns)
        self._conns_lock = threading.Lock()  # writers may join from an accept thread
        self._kinds = frozenset(kinds) if kinds else None
        self._max_bytes = max_bytes
        self.rejected = 0
        self.received = 0
        self.bytes_received = 0
        self.last_error = ""

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
                self.received += 1
                self.bytes_received += len(raw)
                try:
                    out.append(decode(raw, self._max_bytes, self._kinds))
                except CodecError as exc:
                    self.rejected += 1
                    self.last_error = str(exc)
                if not conn.poll():  # type: ignore[union-attr]
                    break
        self.remove_closed()
        return out


class SharedParams:
    """A versioned float32 vector in shared memory, one writer and many readers (seqlock).

    One role creates it with :meth:`create` (and frees it on close); others :meth:`attach` by
    name. Local roles share the launcher's resource tracker, so an attach registers nothing new
    and the block is reclaimed even if its creator crashes.
    """

    def __init__(self, shm: shared_memory.SharedMemory, size: int, owner: bool) -> None:
        self._shm = shm
        self._owner = owner
        self.size = size
        self._header = np.ndarray((4,), dtype=np.int64, buffer=shm.buf, offset=0)
        self._payload = np.ndarray((size,), dtype=np.float32, buffer=shm.buf, offset=_HEADER_BYTES)

    @classmethod
    def create(cls, size: int, signature: int = 0, name: str | None = None) -> SharedParams:
        """Allocate a block for ``size`` float32 parameters; version starts at 0 (nothing yet)."""
        shm = shared_memory.SharedMemory(
            name=name, create=True, size=_HEADER_BYTES + 4 * max(size, 1)
        )
        params = cls(shm, size, owner=True)
        params._header[:] = (0, 0, size, signature)
        return params

    @classmethod
    def attach(cls, name: str, size: int) -> SharedParams:
        """Open an existing block by name (in a role process)."""
        try:
            shm = shared_memory.SharedMemory(name=name)
        except FileNotFoundError as exc:
            raise TransportError(f"parameter block {name!r} does not exist") from exc
        params = cls(shm, size, owner=False)
        if int(params._header[2]) != size:
            raise TransportError(
                f"parameter block {name!r} holds {int(params._header[2])} values, expected {size}"
            )
        return params

    @property
    def name(self) -> str:
        return self._shm.name

    @property
    def signature(self) -> int:
        return int(self._header[3])

    @property
    def version(self) -> int:
        """The latest published version (0 before the first publish)."""
        return int(self._header[1])

    def publish(self, flat: np.ndarray, version: int) -> None:
        """Write a new parameter vector; readers never observe a torn copy."""
        if flat.shape != (self.size,):
            raise TransportError(
                f"parameter vector has shape {flat.shape}, expected ({self.size},)"
            )
        seq = int(self._header[0])
        self._header[0] = seq + 1  # odd: write in progress
        self._payload[:] = flat
        self._header[1] = version
        self._header[0] = seq + 2

    def fetch_if_newer(self, have_version: int, out: np.ndarray, retries: int = 100) -> int | None:
        """Copy the vector into ``out`` if a version newer than ``have_version`` exists.

        Returns the copied version, or ``None`` when nothing newer was published.
        """
        for _ in range(retries):
            seq1 = int(self._header[0])
            version = int(self._header[1])
            if version <= have_version:
                return None
            if seq1 & 1:
                time.sleep(0.0005)
                continue
            out[:] = self._payload
            if int(self._header[0]) == seq1:
                return version
        raise TransportError("parameter block kept changing while being read")

    def close(self) -> None:
        """Detach; the creator also frees the block."""
        del self._header, self._payload
        self._shm.close()
        if self._owner:
            try:
                self._shm.unlink()
            except FileNotFoundError:
                pass
