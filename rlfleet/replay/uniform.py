"""Uniform replay with the same interface as :class:`~rlfleet.replay.PrioritizedReplay`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

import rlfleet.replay.kernels as K
from rlfleet.replay.fields import Spec
from rlfleet.replay.snapshot import load_buffer, save_buffer
from rlfleet.replay.storage import Sample, SlotStorage, check_float


class UniformReplay(SlotStorage):
    """Every stored item (reserved and FIFO) equally likely, drawn with replacement.

    ``sample(B, beta)`` ignores ``beta`` (validated, so callers can switch buffers freely) and
    returns weights of 1. ``update_priorities`` validates its input like the prioritized buffer
    and then does nothing (returns 0). Not thread-safe by itself: the caller holds a lock.
    """

    kind = "uniform"

    def __init__(
        self, capacity: int, fields: Mapping[str, Spec], seed: int = 0, reserved: int = 0
    ) -> None:
        super().__init__(capacity, fields, reserved=reserved, seed=seed)

    @property
    def max_priority(self) -> float:
        """Always 1.0 (there are no priorities)."""
        return 1.0

    def sample(self, batch_size: int, beta: float = 0.0) -> Sample:
        """Draw ``batch_size`` stored items uniformly with replacement."""
        b = self._check_batch_size(batch_size)
        check_float("beta", beta, 0.0, 1.0)
        j = self._rng.integers(0, len(self), size=b, dtype=np.int64)
        # Stored slots are 0..num_reserved-1 and K..K+ring_size-1: map the draw onto them.
        idx = np.where(j < self._num_reserved, j, j - self._num_reserved + self._reserved)
        return Sample(idx, np.ones(b, dtype=np.float32), self._gather(idx), self._gens[idx])

    def update_priorities(
        self, indices: np.ndarray, priorities: np.ndarray, generations: np.ndarray
    ) -> int:
        """Validate like the prioritized buffer, then ignore (returns 0)."""
        idx, td, gen = self._convert_update(indices, priorities, generations)
        code, pos = K.check_update(idx, td, self._gens, self._capacity)
        if code:
            self._raise_update_error(code, pos, idx, td)
        return 0

    @classmethod
    def _from_state(
        cls, header: dict[str, Any], fields: dict[str, Spec], arrays: dict[str, np.ndarray]
    ) -> UniformReplay:
        rb = cls(header["capacity"], fields, reserved=header["reserved"])
        rb._restore(header, arrays)
        return rb

    def save(self, path: str | Path) -> None:
        """Write an atomic snapshot of the whole buffer (see :mod:`rlfleet.replay.snapshot`)."""
        save_buffer(self, path)

    @classmethod
    def load(cls, path: str | Path) -> UniformReplay:
        """Restore a buffer written by :meth:`save` (no code is executed while loading)."""
        return load_buffer(path, cls)
