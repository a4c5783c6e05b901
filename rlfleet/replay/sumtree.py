"""A batched 8-ary sum tree (with a companion min tree) over non-negative float64 leaves."""

from __future__ import annotations

import numpy as np

import rlfleet.replay.kernels as K
from rlfleet.errors import ReplayError

FANOUT = 8


def _layout(capacity: int) -> np.ndarray:
    """Start offset of each level (top first) of the 8-ary tree over ``capacity`` leaves."""
    lens = [-(-capacity // FANOUT) * FANOUT]
    while lens[-1] > FANOUT:
        lens.append(-(-(lens[-1] // FANOUT) // FANOUT) * FANOUT)
    lens.reverse()
    return np.cumsum([0, *lens[:-1]]).astype(np.int64), int(sum(lens))


def _aligned(n: int, fill: float) -> np.ndarray:
    # 64-byte aligned so each group of 8 siblings is exactly one cache line.
    buf = np.full(n + 8, fill, dtype=np.float64)
    start = (-buf.ctypes.data % 64) // 8
    return buf[start : start + n]


class SumTree:
    """Sum tree with batched set / get / prefix-sum search, plus the minimum positive leaf.

    Leaves are float64 and start at 0. Every operation takes a whole batch: the loops run in
    numba kernels without the GIL. Not thread-safe by itself: the caller holds a lock.

    Prefix-sum search (:meth:`find`) uses half-open intervals: leaf ``i`` owns
    ``[C_i, C_i + p_i)`` with ``C_i`` the sum of the leaves before it, so a value exactly on a
    boundary belongs to the leaf that starts there. Zero leaves own nothing and are never
    returned while the tree holds mass; values at or beyond :attr:`total` (rounding) land on the
    last positive leaf, so the last slot is reachable and nothing falls off the end.
    """

    def __init__(self, capacity: int) -> None:
        if not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ReplayError(f"SumTree capacity must be an int >= 1, got {capacity!r}")
        self.capacity = int(capacity)
        self._offs, size = _layout(self.capacity)
        self._leaf = int(self._offs[-1])
        self._t = _aligned(size, 0.0)
        self._mn = _aligned(size, np.inf)

    @property
    def total(self) -> float:
        """Sum of all leaves."""
        return float(K.tree_total_min(self._t, self._mn, self._offs)[0])

    @property
    def min(self) -> float:
        """Smallest positive leaf (``inf`` when every leaf is 0)."""
        return float(K.tree_total_min(self._t, self._mn, self._offs)[1])

    def _indices(self, indices: np.ndarray) -> np.ndarray:
        idx = np.asarray(indices)
        if idx.ndim != 1 or idx.dtype.kind not in "iu":
            raise ReplayError(
                f"SumTree indices must be a 1-d integer array, got dtype {idx.dtype} "
                f"shape {idx.shape}"
            )
        idx = idx.astype(np.int64, copy=False)
        if idx.size and (idx.min() < 0 or idx.max() >= self.capacity):
            bad = idx[(idx < 0) | (idx >= self.capacity)][0]
            raise ReplayError(f"SumTree index {bad} out of range; valid: 0..{self.capacity - 1}")
        return np.ascontiguousarray(idx)

    def set(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Set leaves ``indices`` to ``values`` (finite, >= 0). Later duplicates win."""
        idx = self._indices(indices)
        vals = np.ascontiguousarray(np.asarray(values, dtype=np.float64))
        if vals.shape != idx.shape:
            raise ReplayError(f"SumTree values shape {vals.shape} != indices shape {idx.shape}")
        if not np.isfinite(vals).all() or (vals < 0).any():
            bad = vals[~np.isfinite(vals) | (vals < 0)][0]
            raise ReplayError(f"SumTree values must be finite and >= 0, got {bad}")
        K.tree_set(self._t, self._mn, self._offs, idx, vals)

    def get(self, indices: np.ndarray) -> np.ndarray:
        """Leaf values at ``indices`` (float64 copy)."""
        return self._t[self._leaf + self._indices(indices)]

    def find(self, values: np.ndarray) -> np.ndarray:
        """Leaf index for each prefix-sum value in ``values`` (see the class docstring)."""
        vals = np.ascontiguousarray(np.asarray(values, dtype=np.float64).reshape(-1))
        if self.total <= 0.0:
            raise ReplayError("SumTree.find on a tree with total 0: nothing can be sampled")
        if vals.size and (not np.isfinite(vals).all() or vals.min() < 0):
            raise ReplayError("SumTree.find values must be finite and >= 0")
        out = np.empty(vals.shape[0], dtype=np.int64)
        K.tree_find(self._t, self._offs, vals, out)
        return out

    def sample(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """Stratified draw: ``batch_size`` equal segments of the total, one uniform value each."""
        if batch_size < 1:
            raise ReplayError(f"batch_size must be >= 1, got {batch_size}")
        u = rng.random(batch_size)
        return self.find((np.arange(batch_size) + u) * (self.total / batch_size))

    def leaves(self) -> np.ndarray:
        """A copy of all ``capacity`` leaves (for snapshots)."""
        return self._t[self._leaf : self._leaf + self.capacity].copy()

    def load_leaves(self, values: np.ndarray) -> None:
        """Replace every leaf at once and rebuild the tree bottom-up (bit-identical to updates)."""
        vals = np.asarray(values, dtype=np.float64)
        if vals.shape != (self.capacity,):
            raise ReplayError(f"SumTree leaves shape {vals.shape} != ({self.capacity},)")
        if not np.isfinite(vals).all() or (vals < 0).any():
            raise ReplayError("SumTree leaves must be finite and >= 0")
        self._t[:] = 0.0
        self._t[self._leaf : self._leaf + self.capacity] = vals
        K.tree_rebuild(self._t, self._mn, self._offs)
