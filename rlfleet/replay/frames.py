"""Frame store: each distinct frame of stacked image observations is kept once.

Design (see docs/replay.md):

- Frames live as raw bytes in one array ``(F, row_bytes)`` (rows padded to 8 bytes so they can be
  hashed and compared as uint64 words). Transition slots hold ``stack`` frame ids per field.
- Dedup is content-addressed, so it needs no knowledge of envs, streams, n-step or episode
  boundaries: each incoming frame is hashed (all of its bytes), looked up in a direct-mapped table
  of recent frames, and reused only if that frame is still alive *and byte-equal* (verified word by
  word). A hash collision or an overwritten table bucket only costs a duplicate copy, never a wrong
  frame, so reconstruction is byte-exact by construction.
- Each frame has a reference count (number of transition-slot references). When FIFO eviction
  overwrites a slot, its frames are released first; a frame whose count reaches 0 goes back to a
  LIFO free list. A live transition therefore never references a recycled frame.
- The store starts at ``capacity + slack`` frames (enough when consecutive observations overlap) and
  grows by 1.5x when the free list runs short (no overlap at all needs ``2 * stack`` frames per
  transition). LIFO reuse keeps the touched memory near the live frame count.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from rlfleet.replay.blocks import BlockPool

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL = np.uint64(0xFF51AFD7ED558CCD)
_MUL2 = np.uint64(0xC4CEB9FE1A85EC53)


@njit(cache=True, nogil=True, inline="always")
def _hash_row(row):  # pragma: no cover - compiled
    # Independent per-word terms summed: LLVM vectorises the loop; the position constant makes
    # the hash order-sensitive; a murmur finaliser mixes the sum.
    acc = np.uint64(0)
    for i in range(row.shape[0]):
        acc += (row[i] ^ (np.uint64(i + 1) * _GOLDEN)) * _MUL
    acc ^= acc >> np.uint64(33)
    acc *= _MUL2
    acc ^= acc >> np.uint64(33)
    return acc


@njit(cache=True, nogil=True, inline="always")
def _equal(a, b):  # pragma: no cover - compiled
    for i in range(a.shape[0]):
        if a[i] != b[i]:
            return False
    return True


@njit(cache=True, nogil=True)
def _release(refc, free, st, refs, slots, gens):  # pragma: no cover - compiled
    """Drop the references of occupied ``slots`` (gens > 0); free frames reaching 0."""
    top = st[0]
    for j in range(slots.shape[0]):
        s = slots[j]
        if gens[s] == 0:
            continue
        for k in range(refs.shape[1]):
            f = refs[s, k]
            refc[f] -= 1
            if refc[f] == 0:
                free[top] = f
                top += 1
    st[0] = top


@njit(cache=True, nogil=True)
def _insert(words, hashes, refc, free, st, table, inp, refs, slots):  # pragma: no cover
    """Store (or find) each input frame; write its id into ``refs[slots[j // stack], j % stack]``.

    The caller guarantees ``st[0]`` (free count) >= number of input frames.
    """
    mask = np.uint64(table.shape[0] - 1)
    stack = refs.shape[1]
    top = st[0]
    hw = st[1]
    for j in range(inp.shape[0]):
        row = inp[j]
        h = _hash_row(row)
        b = np.int64(h & mask)
        f = table[b]
        if not (f >= 0 and refc[f] > 0 and hashes[f] == h and _equal(words[f], row)):
            top -= 1
            f = free[top]
            words[f, :] = row
            hashes[f] = h
            table[b] = f
            if f + 1 > hw:
                hw = f + 1
        refc[f] += 1
        refs[slots[j // stack], j % stack] = f
    st[0] = top
    st[1] = hw


@njit(cache=True, nogil=True)
def _gather(words, refs, idx, out):  # pragma: no cover - compiled
    """out[b, k, :] = words of frame refs[idx[b], k] (8-byte words: near memcpy speed)."""
    for b in range(idx.shape[0]):
        s = idx[b]
        for k in range(refs.shape[1]):
            src = words[refs[s, k]]
            dst = out[b, k]
            for w in range(src.shape[0]):
                dst[w] = src[w]


@njit(cache=True, nogil=True)
def _rebuild_table(hashes, refc, table):  # pragma: no cover - compiled
    mask = np.uint64(table.shape[0] - 1)
    table[:] = -1
    for f in range(hashes.shape[0]):
        if refc[f] > 0:
            table[np.int64(hashes[f] & mask)] = f


def _table_size(frames: int) -> int:
    return 1 << max(4, (2 * frames - 1).bit_length())


class FrameStore:
    """Reference-counted, content-deduplicated storage of equal-sized frames (raw bytes)."""

    def __init__(self, frame_bytes: int, initial_frames: int) -> None:
        self.frame_bytes = int(frame_bytes)
        self.row_bytes = (self.frame_bytes + 7) // 8 * 8
        self._pool = BlockPool()
        self._alloc(max(16, int(initial_frames)))

    def _alloc(self, n: int) -> None:
        # Never touched here: pages cost RSS only once a frame is written. Padding bytes are
        # written with each row (rows_of pads with zeros), so they need no initialisation.
        self.raw = np.empty((n, self.row_bytes), dtype=np.uint8)
        self.hashes = np.zeros(n, dtype=np.uint64)
        self.refc = np.zeros(n, dtype=np.int32)
        # LIFO free list ordered so ids pop as 0, 1, 2, ...: touched memory stays compact.
        self.free = np.arange(n - 1, -1, -1, dtype=np.int64)
        self.st = np.array([n, 0], dtype=np.int64)  # [free count, high-water id + 1]
        self.table = np.full(_table_size(n), -1, dtype=np.int64)

    @property
    def num_frames(self) -> int:
        """Allocated frame rows."""
        return self.raw.shape[0]

    @property
    def live_frames(self) -> int:
        """Frames referenced by at least one stored transition."""
        return self.num_frames - int(self.st[0])

    def nbytes_touched(self) -> int:
        """Bytes of frame rows ever written (what RSS pays for)."""
        return int(self.st[1]) * self.row_bytes

    def reserve(self, needed: int) -> None:
        """Grow so at least ``needed`` frames are free. Logical content is unchanged."""
        if self.st[0] >= needed:
            return
        old = self.num_frames
        new = max(old + old // 2, old + needed - int(self.st[0]))
        raw, hashes, refc, free_cnt = self.raw, self.hashes, self.refc, int(self.st[0])
        hw = int(self.st[1])
        free_old = self.free[:free_cnt].copy()
        self.raw = np.empty((new, self.row_bytes), dtype=np.uint8)
        self.raw[:hw] = raw[:hw]
        del raw
        self.hashes = np.zeros(new, dtype=np.uint64)
        self.hashes[:old] = hashes
        self.refc = np.zeros(new, dtype=np.int32)
        self.refc[:old] = refc
        # New ids sit below the old free ids, so the old (already touched) ones are reused first.
        self.free = np.empty(new, dtype=np.int64)
        added = np.arange(new - 1, old - 1, -1, dtype=np.int64)
        self.free[: added.size] = added
        self.free[added.size : added.size + free_cnt] = free_old
        self.st[0] = added.size + free_cnt
        self.table = np.full(_table_size(new), -1, dtype=np.int64)
        _rebuild_table(self.hashes, self.refc, self.table)

    def rows_of(self, frames: np.ndarray) -> np.ndarray:
        """View (or padded copy) of a ``(n, stack, *frame_shape)`` batch as uint64 rows."""
        flat = np.ascontiguousarray(frames).view(np.uint8).reshape(-1, self.frame_bytes)
        if self.row_bytes != self.frame_bytes or flat.ctypes.data % 8:
            padded = np.zeros((flat.shape[0], self.row_bytes), dtype=np.uint8)
            padded[:, : self.frame_bytes] = flat
            flat = padded
        return flat.view(np.uint64)

    def release(self, refs: np.ndarray, slots: np.ndarray, gens: np.ndarray) -> None:
        """Drop the frames referenced by the occupied ``slots`` (before they are overwritten)."""
        _release(self.refc, self.free, self.st, refs, slots, gens)

    def insert(self, rows: np.ndarray, refs: np.ndarray, slots: np.ndarray) -> None:
        """Store ``rows`` (from :meth:`rows_of`) and point ``refs[slots]`` at them.

        Call :meth:`reserve` with ``len(rows)`` first (before any state change of the batch).
        """
        _insert(
            self.raw.view(np.uint64),
            self.hashes,
            self.refc,
            self.free,
            self.st,
            self.table,
            rows,
            refs,
            slots,
        )

    def gather(self, refs: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Bytes of the stacks of slots ``idx``: uint8 ``(B, stack, frame_bytes)``.

        The output comes from a recycling pool (see ``blocks.py``): it is the caller's until
        every reference to it is gone, and then it is reused without new page faults.
        """
        b, stack = idx.shape[0], refs.shape[1]
        out = self._pool.take((b, stack, self.row_bytes), np.uint8)
        _gather(self.raw.view(np.uint64), refs, idx, out.view(np.uint64))
        if self.row_bytes != self.frame_bytes:
            out = np.ascontiguousarray(out[:, :, : self.frame_bytes])
        return out

    def state(self) -> dict[str, np.ndarray]:
        """Arrays for a snapshot (only the touched rows of the frame array)."""
        hw = int(self.st[1])
        return {
            "raw": self.raw[:hw],
            "hashes": self.hashes,
            "refc": self.refc,
            "free": self.free,
            "st": self.st,
            "table": self.table,
        }

    @classmethod
    def from_state(cls, frame_bytes: int, arrays: dict[str, np.ndarray]) -> FrameStore:
        """Inverse of :meth:`state` (shapes are checked by the caller's loader)."""
        store = cls.__new__(cls)
        store.frame_bytes = int(frame_bytes)
        store.row_bytes = (store.frame_bytes + 7) // 8 * 8
        store._pool = BlockPool()
        n = arrays["hashes"].shape[0]
        store.raw = np.empty((n, store.row_bytes), dtype=np.uint8)
        hw = arrays["raw"].shape[0]
        store.raw[:hw] = arrays["raw"]
        store.hashes = np.array(arrays["hashes"], dtype=np.uint64)
        store.refc = np.array(arrays["refc"], dtype=np.int32)
        store.free = np.array(arrays["free"], dtype=np.int64)
        store.st = np.array(arrays["st"], dtype=np.int64)
        store.table = np.array(arrays["table"], dtype=np.int64)
        return store
