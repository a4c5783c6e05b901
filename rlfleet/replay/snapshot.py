"""Atomic, code-free snapshots of a whole replay buffer.

Format: one uncompressed ``.npz`` (numpy zip) holding a JSON header as a uint8 array
(``__header__``) plus raw arrays: fields, generations, tree leaves, frame store, cursor, sizes,
max priority and the RNG state. It is loaded with ``allow_pickle=False``, so a snapshot can never
run code. It is written to a temporary file in the destination's folder, fsynced, then moved over
the destination with ``os.replace``: readers see the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from rlfleet.errors import CheckpointError
from rlfleet.replay.fields import FieldSpec, FrameStackSpec, Spec

FORMAT = "rlfleet.replay.snapshot"
VERSION = 1
_HEADER = "__header__"


class _Snapshottable(Protocol):
    kind: str

    @property
    def fields(self) -> dict[str, Spec]: ...

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]: ...


B = TypeVar("B")


def encode_fields(fields: dict[str, Spec]) -> dict[str, dict[str, Any]]:
    """Field declaration -> JSON-able dict."""
    out: dict[str, dict[str, Any]] = {}
    for name, spec in fields.items():
        if isinstance(spec, FieldSpec):
            out[name] = {"type": "array", "shape": list(spec.shape), "dtype": spec.dtype.str}
        else:
            out[name] = {
                "type": "frames",
                "stack": spec.stack,
                "frame_shape": list(spec.frame_shape),
                "dtype": spec.dtype.str,
                "store": spec.store,
            }
    return out


def decode_fields(raw: Any) -> dict[str, Spec]:
    """Inverse of :func:`encode_fields`; raises CheckpointError on anything unexpected."""
    if not isinstance(raw, dict):
        raise CheckpointError(f"snapshot fields must be an object, got {type(raw).__name__}")
    out: dict[str, Spec] = {}
    for name, d in raw.items():
        try:
            if d["type"] == "array":
                out[name] = FieldSpec(tuple(d["shape"]), np.dtype(d["dtype"]))
            elif d["type"] == "frames":
                out[name] = FrameStackSpec(
                    d["stack"], tuple(d["frame_shape"]), np.dtype(d["dtype"]), d["store"]
                )
            else:
                raise CheckpointError(
                    f"snapshot field {name!r} has type {d['type']!r}; valid: 'array', 'frames'"
                )
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"snapshot field {name!r} is malformed: {e}") from None
    return out


def save_buffer(buf: _Snapshottable, path: str | Path) -> None:
    """Atomically write ``buf`` to ``path`` (an existing folder must hold it)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise CheckpointError(f"cannot write snapshot {path}: folder {path.parent} does not exist")
    header, arrays = buf._state()
    header = {
        "format": FORMAT,
        "version": VERSION,
        "kind": buf.kind,
        "fields": encode_fields(buf.fields),
        **header,
    }
    head = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{_HEADER: head}, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_buffer(path: str | Path, cls: type[B]) -> B:
    """Read a snapshot written by :func:`save_buffer` into a new ``cls`` buffer."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"replay snapshot {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            if _HEADER not in data.files:
                raise CheckpointError(f"{path} is not an rlfleet replay snapshot (no header)")
            header = json.loads(bytes(data[_HEADER]).decode("utf-8"))
            arrays = {k: data[k] for k in data.files if k != _HEADER}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"cannot read replay snapshot {path}: {e}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an rlfleet replay snapshot")
    if header.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: snapshot version {header.get('version')!r}; valid: {VERSION}"
        )
    kind = getattr(cls, "kind", None)
    if header.get("kind") != kind:
        raise CheckpointError(
            f"{path} holds a {header.get('kind')!r} buffer; {cls.__name__} loads {kind!r}"
        )
    fields = decode_fields(header.get("fields"))
    try:
        return cls._from_state(header, fields, arrays)  # type: ignore[attr-defined]
    except KeyError as e:
        raise CheckpointError(f"{path}: snapshot is missing {e}") from None
