"""Proportional prioritized replay (Schaul et al., 2016) with stratified sampling."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

import rlfleet.replay.kernels as K
from rlfleet.replay.fields import Spec
from rlfleet.replay.snapshot import load_buffer, save_buffer
from rlfleet.replay.storage import Sample, SlotStorage, check_float
from rlfleet.replay.sumtree import SumTree


class PrioritizedReplay(SlotStorage):
    """Proportional prioritized replay over named fields.

    - Priority of slot i: ``p_i = |delta_i| + eps`` (``eps = priority_eps``, or
      ``reserved_priority_eps`` for the reserved region — the DQfD demonstration bonus, e.g.
      1.0 vs 0.001); the tree holds ``p_i ** alpha``.
    - ``add(batch, None)`` gives new items the maximum ``p`` seen so far (starts at 1.0).
    - ``sample(B, beta)``: stratified (B equal segments of the total mass, one uniform draw each);
      importance weights follow the paper: ``w_i = (N P(i))^-beta / max_j w_j`` with the maximum
      over the **whole buffer** (from the smallest stored priority), not over the batch, so weights
      are <= 1 and equal ``(p_min / p_i) ** (alpha * beta)`` in raw terms.
    - ``update_priorities(indices, |delta|, generations)`` skips slots rewritten since sampling.

    Not thread-safe by itself: the caller holds a lock. Kernels release the GIL.
    """

    kind = "prioritized"

    def __init__(
        self,
        capacity: int,
        fields: Mapping[str, Spec],
        alpha: float = 0.6,
        priority_eps: float = 1e-6,
        reserved: int = 0,
        seed: int = 0,
        reserved_priority_eps: float | None = None,
    ) -> None:
        self.alpha = check_float("alpha", alpha, 0.0, 1e6)
        # eps > 0 keeps every stored item sampleable and the min priority (weight normaliser) > 0.
        self.priority_eps = check_float("priority_eps", priority_eps, 0.0, 1e300, low_open=True)
        res_eps = priority_eps if reserved_priority_eps is None else reserved_priority_eps
        self.reserved_priority_eps = check_float(
            "reserved_priority_eps", res_eps, 0.0, 1e300, low_open=True
        )
        super().__init__(capacity, fields, reserved=reserved, seed=seed)
        self._tree = SumTree(self._capacity)
        self._max_p = 1.0

    @property
    def max_priority(self) -> float:
        """Largest raw priority ``|delta| + eps`` seen so far (1.0 before any)."""
        return self._max_p

    @property
    def tree(self) -> SumTree:
        """The underlying sum tree (leaves are ``p_i ** alpha``); read-only use, please."""
        return self._tree

    def _set_priorities(self, slots: np.ndarray, prio: np.ndarray | None, reserved: bool) -> None:
        t = self._tree
        if prio is None:
            K.add_at_value(
                t._t, t._mn, t._offs, self._gens, slots, math.pow(self._max_p, self.alpha)
            )
        else:
            eps = self.reserved_priority_eps if reserved else self.priority_eps
            self._max_p = K.add_prioritized(
                t._t, t._mn, t._offs, self._gens, slots, prio, eps, self.alpha, self._max_p
            )

    def sample(self, batch_size: int, beta: float) -> Sample:
        """Draw ``batch_size`` items (with replacement) proportionally to ``p_i ** alpha``."""
        b = self._check_batch_size(batch_size)
        beta = check_float("beta", beta, 0.0, 1.0)
        t = self._tree
        idx = np.empty(b, dtype=np.int64)
        weights = np.empty(b, dtype=np.float32)
        gens = np.empty(b, dtype=np.int64)
        K.sample_prioritized(
            t._t, t._mn, t._offs, self._rng.random(b), beta, self._gens, idx, weights, gens
        )
        return Sample(idx, weights, self._gather(idx), gens)

    def update_priorities(
        self, indices: np.ndarray, priorities: np.ndarray, generations: np.ndarray
    ) -> int:
        """Set raw priorities ``|delta|`` (eps and alpha applied here) of sampled slots.

        Slots rewritten since they were sampled (generation changed) are skipped; returns how
        many were applied. Later duplicates of an index win. Validates everything first.
        """
        idx, td, gen = self._convert_update(indices, priorities, generations)
        t = self._tree
        code, pos, applied, max_p = K.update_prioritized(
            t._t,
            t._mn,
            t._offs,
            idx,
            td,
            gen,
            self._gens,
            self._reserved,
            self.priority_eps,
            self.reserved_priority_eps,
            self.alpha,
            self._max_p,
        )
        if code:
            self._raise_update_error(code, pos, idx, td)
        self._max_p = max_p
        return int(applied)

    def priorities(self, indices: np.ndarray) -> np.ndarray:
        """Stored tree values ``p_i ** alpha`` at ``indices`` (for inspection and tests)."""
        return self._tree.get(indices)

    # -- snapshot --------------------------------------------------------------------------
    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        header, arrays = super()._state()
        header.update(
            alpha=self.alpha,
            priority_eps=self.priority_eps,
            reserved_priority_eps=self.reserved_priority_eps,
            max_priority=self._max_p,
        )
        arrays["tree_leaves"] = self._tree.leaves()
        return header, arrays

    @classmethod
    def _from_state(
        cls, header: dict[str, Any], fields: dict[str, Spec], arrays: dict[str, np.ndarray]
    ) -> PrioritizedReplay:
        rb = cls(
            header["capacity"],
            fields,
            alpha=header["alpha"],
            priority_eps=header["priority_eps"],
            reserved=header["reserved"],
            reserved_priority_eps=header["reserved_priority_eps"],
        )
        rb._restore(header, arrays)
        rb._max_p = float(header["max_priority"])
        rb._tree.load_leaves(arrays["tree_leaves"])
        return rb

    def save(self, path: str | Path) -> None:
        """Write an atomic snapshot of the whole buffer (see :mod:`rlfleet.replay.snapshot`)."""
        save_buffer(self, path)

    @classmethod
    def load(cls, path: str | Path) -> PrioritizedReplay:
        """Restore a buffer written by :meth:`save` (no code is executed while loading)."""
        return load_buffer(path, cls)
