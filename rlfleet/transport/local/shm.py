"""Parameters in shared memory: one versioned float32 vector guarded by a sequence lock.

The learner writes a flat vector and a version; actors read the version (one integer load) and
copy the vector only when it is newer. A torn read is detected by the sequence number and
retried. :class:`CreatingParams` (the learner's end) creates the block on the first publish;
:class:`LazyParams` (actors, evaluator) attaches on first use, waiting while roles start in any
order.
"""

from __future__ import annotations

import time
from multiprocessing import shared_memory
from typing import Any

import numpy as np

from rlfleet.errors import TransportError
from rlfleet.transport.ports import CMD_STOP

_HEADER_BYTES = 64  # seq, version, nbytes, layout signature, padding to a cache line


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


class LazyParams:
    """Attaches to the parameter block on first use (its size is known only after the role has
    built its network); the learner creates it, so wait for it while roles start in any order."""

    def __init__(self, name: str, link: Any, timeout: float = 120.0) -> None:
        self._name, self._link, self._timeout = name, link, timeout
        self._params: Any = None

    def _attach(self, size: int) -> Any:
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                return SharedParams.attach(self._name, size)
            except TransportError:
                if time.monotonic() > deadline or self._link.poll_command(0.05) == CMD_STOP:
                    raise

    def fetch_if_newer(self, have_version: int, out: np.ndarray) -> int | None:
        if self._params is None:
            self._params = self._attach(out.shape[0])
        return self._params.fetch_if_newer(have_version, out)


class CreatingParams:
    """The learner's side of the local block: creates it on the first publish."""

    def __init__(self, name_hint: str) -> None:
        self.name_hint = name_hint
        self.block: Any = None

    def publish(self, flat: np.ndarray, version: int) -> None:
        if self.block is None:
            self.block = SharedParams.create(flat.shape[0], name=self.name_hint)
        self.block.publish(flat, version)

    def close(self) -> None:
        if self.block is not None:
            self.block.close()
