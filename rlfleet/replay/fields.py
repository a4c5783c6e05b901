"""Field declarations and whole-batch validation for replay buffers.

Casting rule (documented in docs/replay.md): a batch array whose dtype differs from the field's is
accepted when numpy calls the cast *safe* (``int32 -> int64``, ``bool -> float32``, ...) or when
both are floating point (``float64 -> float32``: Python floats arrive as float64 and losing
precision there is expected). Every other cast (``float -> int``, ``int64 -> int32``,
``uint8 <- int64``, ...) is rejected with an error naming the field, because it can silently wrap
or truncate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from rlfleet.errors import ReplayError


@dataclass(frozen=True)
class FieldSpec:
    """One stored field: per-item ``shape`` (``()`` for scalars) and ``dtype``."""

    shape: tuple[int, ...]
    dtype: np.dtype | type

    def __post_init__(self) -> None:
        shape = tuple(int(d) for d in self.shape)
        if any(d < 1 for d in shape):
            raise ReplayError(f"FieldSpec shape must have positive dims, got {self.shape!r}")
        dt = np.dtype(self.dtype)
        if dt.hasobject or dt.kind not in "biufc":
            raise ReplayError(
                f"FieldSpec dtype {dt} is not supported; valid: bool, int, uint, float, complex"
            )
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "dtype", dt)

    @property
    def item_shape(self) -> tuple[int, ...]:
        """Shape of one item as callers pass and receive it."""
        return self.shape


@dataclass(frozen=True)
class FrameStackSpec:
    """A stack of ``stack`` frames of ``frame_shape`` (channel-first ``(stack, *frame_shape)``).

    Callers pass and receive full stacks; internally every distinct frame is stored once in the
    frame store named ``store``. Fields sharing a store (``obs`` and ``next_obs``) deduplicate
    against each other and must agree on ``frame_shape`` and ``dtype``.
    """

    stack: int
    frame_shape: tuple[int, ...]
    dtype: np.dtype | type = np.uint8
    store: str = "frames"

    def __post_init__(self) -> None:
        if int(self.stack) < 1:
            raise ReplayError(f"FrameStackSpec stack must be >= 1, got {self.stack!r}")
        fshape = tuple(int(d) for d in self.frame_shape)
        if not fshape or any(d < 1 for d in fshape):
            raise ReplayError(f"FrameStackSpec frame_shape must be non-empty, got {fshape!r}")
        dt = np.dtype(self.dtype)
        if dt.hasobject or dt.kind not in "biuf":
            raise ReplayError(f"FrameStackSpec dtype {dt} is not supported; valid: bool/int/float")
        object.__setattr__(self, "stack", int(self.stack))
        object.__setattr__(self, "frame_shape", fshape)
        object.__setattr__(self, "dtype", dt)

    @property
    def item_shape(self) -> tuple[int, ...]:
        """Shape of one item as callers pass and receive it: ``(stack, *frame_shape)``."""
        return (self.stack, *self.frame_shape)

    @property
    def frame_bytes(self) -> int:
        """Bytes in one frame."""
        return int(np.prod(self.frame_shape)) * self.dtype.itemsize


Spec = FieldSpec | FrameStackSpec


def check_fields(fields: Mapping[str, Spec]) -> dict[str, Spec]:
    """Validate a field declaration; returns a plain dict in the caller's order."""
    if not isinstance(fields, Mapping) or not fields:
        raise ReplayError("fields must be a non-empty mapping of name -> FieldSpec/FrameStackSpec")
    out: dict[str, Spec] = {}
    stores: dict[str, FrameStackSpec] = {}
    for name, spec in fields.items():
        if not isinstance(name, str) or not name:
            raise ReplayError(f"field names must be non-empty strings, got {name!r}")
        if not isinstance(spec, (FieldSpec, FrameStackSpec)):
            raise ReplayError(
                f"field {name!r}: spec must be FieldSpec or FrameStackSpec, got {type(spec)}"
            )
        if isinstance(spec, FrameStackSpec):
            other = stores.setdefault(spec.store, spec)
            if (other.frame_shape, other.dtype) != (spec.frame_shape, spec.dtype):
                raise ReplayError(
                    f"field {name!r}: frame store {spec.store!r} holds frames "
                    f"{other.frame_shape} {other.dtype}, not {spec.frame_shape} {spec.dtype}"
                )
        out[name] = spec
    return out


def _cast_ok(src: np.dtype, dst: np.dtype) -> bool:
    return np.can_cast(src, dst, "safe") or (src.kind == "f" and dst.kind == "f")


class BatchValidator:
    """Whole-batch validation against a field declaration (the per-field checks precomputed,
    since this runs on every actor push)."""

    def __init__(self, fields: Mapping[str, Spec]) -> None:
        self._fields = dict(fields)
        self._keys = self._fields.keys()
        self._plan = [
            (name, spec.item_shape, len(spec.item_shape) + 1, spec.dtype)
            for name, spec in self._fields.items()
        ]

    def __call__(
        self, batch: Mapping[str, np.ndarray], max_items: int
    ) -> tuple[dict[str, np.ndarray], int]:
        """Check a whole batch before anything is written; returns (arrays in field dtype, n).

        Raises :class:`ReplayError` naming the field and the valid values for missing / extra
        fields, a wrong shape, an unsafe dtype, ragged lengths or more than ``max_items`` items.
        An empty batch (n = 0) is valid and adds nothing.
        """
        if type(batch) is not dict and not isinstance(batch, Mapping):
            raise ReplayError(f"batch must be a mapping of field -> array, got {type(batch)}")
        if batch.keys() != self._keys:
            missing = sorted(set(self._fields) - set(batch))
            extra = sorted(set(batch) - set(self._fields))
            raise ReplayError(
                f"batch fields do not match: missing {missing}, unknown {extra}; "
                f"valid fields: {sorted(self._fields)}"
            )
        out: dict[str, np.ndarray] = {}
        n = -1
        for name, shape, ndim, dtype in self._plan:
            arr = batch[name]
            if type(arr) is not np.ndarray:
                arr = np.asarray(arr)
            if arr.ndim != ndim or arr.shape[1:] != shape:
                want = f"(n, {', '.join(map(str, shape))})" if shape else "(n,)"
                raise ReplayError(f"field {name!r}: got shape {arr.shape}, expected {want}")
            if arr.dtype != dtype:
                if not _cast_ok(arr.dtype, dtype):
                    raise ReplayError(
                        f"field {name!r}: dtype {arr.dtype} cannot be stored as {dtype} without "
                        f"wrapping or truncation; pass {dtype} (or a safe cast of it)"
                    )
                arr = arr.astype(dtype)
            if n < 0:
                n = arr.shape[0]
            elif arr.shape[0] != n:
                raise ReplayError(
                    f"field {name!r} has {arr.shape[0]} items but the batch has {n}; "
                    "all fields need the same length"
                )
            out[name] = arr
        if n > max_items:
            raise ReplayError(
                f"batch of {n} items does not fit: the region holds at most {max_items}"
            )
        return out, n
