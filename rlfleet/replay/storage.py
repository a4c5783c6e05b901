"""Slot storage shared by the prioritized and uniform replays.

Slots ``0..K-1`` are the reserved region (filled front to back by ``add_reserved``, never evicted);
slots ``K..capacity-1`` are a FIFO ring. Each slot has a generation counter, bumped on every write,
that makes stale priority updates detectable. Plain fields are preallocated arrays
``(capacity, *shape)``; frame-stacked fields store ``stack`` frame ids per slot and share a
:class:`~rlfleet.replay.frames.FrameStore`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

import rlfleet.replay.kernels as K
from rlfleet.errors import CheckpointError, ReplayError
from rlfleet.replay.fields import BatchValidator, FieldSpec, FrameStackSpec, Spec, check_fields
from rlfleet.replay.frames import FrameStore


@dataclass
class Sample:
    """One sampled batch.

    ``indices`` int64[B] (slot ids), ``weights`` float32[B] (importance weights, all ones for
    uniform replay), ``fields`` name -> array ``(B, *item_shape)`` (fresh arrays, owned by the
    caller), ``generations`` int64[B]: pass back unchanged to ``update_priorities``.
    """

    indices: np.ndarray
    weights: np.ndarray
    fields: dict[str, np.ndarray]
    generations: np.ndarray


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ReplayError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def check_float(name: str, value: Any, low: float, high: float, low_open: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ReplayError(f"{name} must be a number, got {value!r}") from None
    ok = math.isfinite(v) and (v > low if low_open else v >= low) and v <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise ReplayError(f"{name}={value!r} is invalid; valid: {bracket}{low}, {high}]")
    return v


class SlotStorage:
    """Fields, frame stores, slots, generations and the RNG; subclasses add the sampling rule.

    Not thread-safe: one caller at a time (the learner holds a lock around add / sample /
    update). The numba kernels release the GIL, so a lock-holding sampler thread does not block
    unrelated Python threads.
    """

    def __init__(
        self, capacity: int, fields: Mapping[str, Spec], reserved: int = 0, seed: int = 0
    ) -> None:
        self._capacity = _check_int("capacity", capacity, 1)
        self._reserved = _check_int("reserved", reserved, 0)
        if self._reserved >= self._capacity:
            raise ReplayError(
                f"reserved={reserved} leaves no FIFO slots; valid: 0..{self._capacity - 1} "
                f"for capacity {self._capacity}"
            )
        self._specs = check_fields(fields)
        self._validate = BatchValidator(self._specs)
        self._ring = self._capacity - self._reserved
        self._cursor = 0
        self._ring_size = 0
        self._num_reserved = 0
        self._gens = np.zeros(self._capacity, dtype=np.int64)
        self._rng = np.random.default_rng(seed)
        self._arrays: dict[str, np.ndarray] = {}
        self._refs: dict[str, np.ndarray] = {}
        self._stores: dict[str, FrameStore] = {}
        for name, spec in self._specs.items():
            if isinstance(spec, FieldSpec):
                # np.zeros maps fresh zero pages: untouched capacity costs no RSS.
                self._arrays[name] = np.zeros((self._capacity, *spec.shape), dtype=spec.dtype)
            else:
                self._refs[name] = np.zeros((self._capacity, spec.stack), dtype=np.int32)
                if spec.store not in self._stores:
                    # Overlapping stacks need ~1 frame per transition; slack covers stream
                    # heads/tails. Without overlap the store grows (see frames.py).
                    slack = max(1024, self._capacity // 8)
                    self._stores[spec.store] = FrameStore(spec.frame_bytes, self._capacity + slack)

    # -- sizes -----------------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        """Total slots, reserved ones included."""
        return self._capacity

    @property
    def num_reserved(self) -> int:
        """Filled reserved (demonstration) slots."""
        return self._num_reserved

    @property
    def fields(self) -> dict[str, Spec]:
        """The field declaration (name -> spec)."""
        return dict(self._specs)

    def __len__(self) -> int:
        return self._num_reserved + self._ring_size

    # -- reading ---------------------------------------------------------------------------
    def _check_slots(self, indices: np.ndarray) -> np.ndarray:
        idx = np.asarray(indices)
        if idx.ndim != 1 or idx.dtype.kind not in "iu":
            raise ReplayError(
                f"indices must be a 1-d integer array, got {idx.dtype}{list(idx.shape)}"
            )
        bad = (idx < 0) | (idx >= self._capacity)
        if bad.any():
            raise ReplayError(
                f"index {int(idx[bad][0])} is outside the buffer; valid: 0..{self._capacity - 1}"
            )
        return idx.astype(np.int64, copy=False)

    def get(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """The fields stored in slots ``indices`` (copies; image fields reassembled from their
        frames), e.g. to inspect what a replay holds. Reserved slots come first."""
        return self._gather(self._check_slots(indices))

    def generations(self, indices: np.ndarray) -> np.ndarray:
        """How often each slot of ``indices`` has been written (what priority updates check)."""
        return self._gens[self._check_slots(indices)].copy()

    # -- writing ---------------------------------------------------------------------------
    def _check_priorities(self, priorities: np.ndarray | None, n: int) -> np.ndarray | None:
        if priorities is None:
            return None
        prio = np.ascontiguousarray(np.asarray(priorities, dtype=np.float64))
        if prio.shape != (n,):
            raise ReplayError(f"priorities must have shape ({n},) like the batch, got {prio.shape}")
        code, pos = K.check_priorities(prio)
        if code:
            raise ReplayError(
                f"priority {prio[pos]} at position {pos} is invalid; valid: finite values >= 0 "
                "(raw |TD error|)"
            )
        return prio

    def add(
        self, batch: Mapping[str, np.ndarray], priorities: np.ndarray | None = None
    ) -> np.ndarray:
        """Append a batch to the FIFO ring (evicting the oldest ring items); returns slot ids.

        Everything is validated before anything is written (see ``fields.BatchValidator``).
        """
        arrays, n = self._validate(batch, self._ring)
        prio = self._check_priorities(priorities, n)
        start = self._cursor
        first: int | None = self._reserved + start
        if start + n <= self._ring:
            slots = np.arange(first, first + n, dtype=np.int64)
        else:
            slots = self._reserved + (np.arange(start, start + n, dtype=np.int64) % self._ring)
            first = None
        self._write(slots, arrays, first)
        self._cursor = (start + n) % self._ring
        self._ring_size = min(self._ring, self._ring_size + n)
        self._set_priorities(slots, prio, reserved=False)
        return slots

    def add_reserved(
        self, batch: Mapping[str, np.ndarray], priorities: np.ndarray | None = None
    ) -> np.ndarray:
        """Append a batch to the reserved region (demonstrations); never evicted.

        Raises if the batch does not fit in the remaining reserved slots.
        """
        arrays, n = self._validate(batch, self._capacity)
        free = self._reserved - self._num_reserved
        if n > free:
            raise ReplayError(
                f"reserved region would overflow: {n} items but only {free} of "
                f"{self._reserved} reserved slots are free"
            )
        prio = self._check_priorities(priorities, n)
        start = self._num_reserved
        slots = np.arange(start, start + n, dtype=np.int64)
        self._write(slots, arrays, start)
        self._num_reserved += n
        self._set_priorities(slots, prio, reserved=True)
        return slots

    def _write(self, slots: np.ndarray, arrays: dict[str, np.ndarray], first: int | None) -> None:
        """Write validated arrays into ``slots`` (``first``: start of a contiguous run, or None)."""
        n = slots.shape[0]
        if n == 0:
            return
        if self._stores:
            need: dict[str, int] = {}
            for name in self._refs:
                spec = self._specs[name]
                need[spec.store] = need.get(spec.store, 0) + n * spec.stack
            # Growing first keeps the batch all-or-nothing: release/insert below cannot fail.
            for store_name, count in need.items():
                self._stores[store_name].reserve(count)
            for name, refs in self._refs.items():
                self._stores[self._specs[name].store].release(refs, slots, self._gens)
            for name, refs in self._refs.items():
                store = self._stores[self._specs[name].store]
                store.insert(store.rows_of(arrays[name]), refs, slots)
        for name, dst in self._arrays.items():
            if first is not None:
                dst[first : first + n] = arrays[name]
            else:
                dst[slots] = arrays[name]

    def _set_priorities(self, slots: np.ndarray, prio: np.ndarray | None, reserved: bool) -> None:
        K.bump_generations(self._gens, slots)

    # -- reading ---------------------------------------------------------------------------
    def _check_batch_size(self, batch_size: int) -> int:
        b = _check_int("batch_size", batch_size, 1)
        if b > len(self):
            raise ReplayError(
                f"cannot sample {b} items: the buffer holds {len(self)}; valid: 1..{len(self)}"
                if len(self)
                else f"cannot sample {b} items from an empty buffer"
            )
        return b

    def _gather(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        b = idx.shape[0]
        for name, spec in self._specs.items():
            if isinstance(spec, FieldSpec):
                out[name] = self._arrays[name].take(idx, axis=0)
            else:
                raw = self._stores[spec.store].gather(self._refs[name], idx)
                out[name] = raw.view(spec.dtype).reshape(b, *spec.item_shape)
        return out

    def _convert_update(
        self, indices: np.ndarray, values: np.ndarray, generations: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx = np.asarray(indices)
        if idx.ndim != 1 or idx.dtype.kind not in "iu":
            raise ReplayError(
                f"indices must be a 1-d integer array, got dtype {idx.dtype} shape {idx.shape}"
            )
        idx = np.ascontiguousarray(idx, dtype=np.int64)
        td = np.ascontiguousarray(values, dtype=np.float64)
        gen = np.ascontiguousarray(generations, dtype=np.int64)
        if td.shape != idx.shape or gen.shape != idx.shape:
            raise ReplayError(
                f"indices {idx.shape}, priorities {td.shape} and generations {gen.shape} "
                "must have the same 1-d shape"
            )
        return idx, td, gen

    def _raise_update_error(self, code: int, pos: int, idx: np.ndarray, td: np.ndarray) -> None:
        if code == K.ERR_INDEX_RANGE:
            raise ReplayError(
                f"index {idx[pos]} at position {pos} out of range; valid: 0..{self._capacity - 1}"
            )
        if code == K.ERR_INDEX_EMPTY:
            raise ReplayError(
                f"index {idx[pos]} at position {pos} is an empty slot; valid: sampled indices "
                f"(reserved 0..{self._num_reserved - 1}, FIFO {self._reserved}.."
                f"{self._reserved + self._ring_size - 1})"
            )
        raise ReplayError(
            f"priority {td[pos]} at position {pos} is invalid; valid: finite values >= 0 "
            "(raw |TD error|)"
        )

    # -- snapshot hooks --------------------------------------------------------------------
    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        header: dict[str, Any] = {
            "capacity": self._capacity,
            "reserved": self._reserved,
            "cursor": self._cursor,
            "ring_size": self._ring_size,
            "num_reserved": self._num_reserved,
            "rng": self._rng.bit_generator.state,
        }
        arrays: dict[str, np.ndarray] = {"gens": self._gens}
        for name, arr in self._arrays.items():
            arrays[f"field:{name}"] = arr
        for name, refs in self._refs.items():
            arrays[f"refs:{name}"] = refs
        for store_name, store in self._stores.items():
            for key, arr in store.state().items():
                arrays[f"store:{store_name}:{key}"] = arr
        return header, arrays

    def _restore(self, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Load state saved by :meth:`_state` into a freshly constructed buffer."""
        self._cursor = int(header["cursor"])
        self._ring_size = int(header["ring_size"])
        self._num_reserved = int(header["num_reserved"])
        self._rng.bit_generator.state = header["rng"]
        _load_into(self._gens, arrays["gens"], "gens")
        for name, arr in self._arrays.items():
            _load_into(arr, arrays[f"field:{name}"], f"field {name!r}")
        for name, refs in self._refs.items():
            _load_into(refs, arrays[f"refs:{name}"], f"frame refs {name!r}")
        for store_name, store in self._stores.items():
            prefix = f"store:{store_name}:"
            state = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            restored = FrameStore.from_state(store.frame_bytes, state)
            self._stores[store_name] = restored


def _load_into(dst: np.ndarray, src: np.ndarray, what: str) -> None:
    if src.shape != dst.shape or src.dtype != dst.dtype:
        raise CheckpointError(
            f"snapshot {what}: shape/dtype {src.shape} {src.dtype} does not match the buffer's "
            f"{dst.shape} {dst.dtype}"
        )
    dst[...] = src


__all__ = ["FieldSpec", "FrameStackSpec", "Sample", "SlotStorage"]
