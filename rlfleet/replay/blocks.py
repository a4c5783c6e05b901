"""Recycled output buffers for large sampled arrays (private).

Sampling frame stacks returns ~30 MB per batch of 512 Atari transitions. Fresh allocations of
that size come from ``mmap`` and pay a page fault per 4 KB page on first touch, which measured
slower than the copy itself. This pool hands out arrays whose ``base`` is a lease object; when the
last reference to the array (and to any view of it, e.g. a ``torch.from_numpy`` tensor) is gone,
the lease's ``__del__`` returns the block to the pool. So reuse never overlaps a live array: the
caller owns what it gets exactly as with a fresh allocation.
"""

from __future__ import annotations

import threading

import numpy as np


class _Lease:
    """Exposes a pooled block through ``__array_interface__`` and returns it when collected."""

    __slots__ = ("__array_interface__", "_block", "_pool")

    def __init__(self, block: np.ndarray, pool: BlockPool) -> None:
        self._block = block
        self._pool = pool
        self.__array_interface__ = block.__array_interface__

    def __del__(self) -> None:
        self._pool._give_back(self._block)


class BlockPool:
    """At most ``keep`` idle blocks per (shape, dtype); thread-safe."""

    def __init__(self, keep: int = 4) -> None:
        self._keep = keep
        self._idle: dict[tuple[tuple[int, ...], str], list[np.ndarray]] = {}
        # Re-entrant: a lease collected by the cyclic GC while this thread holds the lock (an
        # allocation inside the locked section can trigger GC) must not deadlock.
        self._lock = threading.RLock()

    def take(self, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        """An uninitialised array of ``shape``/``dtype`` owned by the caller."""
        key = (tuple(shape), np.dtype(dtype).str)
        with self._lock:
            idle = self._idle.get(key)
            block = idle.pop() if idle else None
        if block is None:
            block = np.empty(shape, dtype=dtype)
        return np.asarray(_Lease(block, self))

    def _give_back(self, block: np.ndarray) -> None:
        key = (block.shape, block.dtype.str)
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self._keep:
                idle.append(block)
