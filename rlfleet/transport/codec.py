"""The wire format: a versioned header plus raw array bytes. Never pickle.

Layout of one message::

    b"RLF" | version:u8 | header_len:u32 little-endian | header (msgpack) | array bytes ...

The header is a msgpack map ``{"kind": str, "meta": {...}, "arrays": [[name, dtype, shape,
nbytes, codec], ...]}``. Array payloads follow in order; ``codec`` is ``"raw"``, ``"zstd"`` or
``"lz4"`` (the latter two only when the library is installed). ``nbytes`` is the size on the wire.

Decoding validates everything before touching the payload: magic, version, header size, msgpack
limits, dtype against an allow-list (no object dtypes, so nothing can execute), shapes, declared
sizes against the real message length and the configured maximum, and decompressed sizes against
the declared shape. Anything wrong raises :class:`~rlfleet.errors.CodecError`; callers count it and
drop the message.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from rlfleet.errors import CodecError

MAGIC = b"RLF"
VERSION = 1
_PREFIX = struct.Struct("<3sBI")
MAX_HEADER_BYTES = 1 << 20
DEFAULT_MAX_MESSAGE_BYTES = 512 << 20
#: dtypes allowed on the wire: plain numbers and booleans only.
ALLOWED_DTYPES = frozenset(
    ["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64"]
    + ["float16", "float32", "float64"]
)
COMPRESSORS = ("raw", "zstd", "lz4")


def _compressor(name: str) -> Any:
    if name == "zstd":
        try:
            import zstandard
        except ModuleNotFoundError as exc:
            raise CodecError("message uses zstd but the 'zstandard' package is missing") from exc
        return zstandard
    if name == "lz4":
        try:
            import lz4.frame
        except ModuleNotFoundError as exc:
            raise CodecError("message uses lz4 but the 'lz4' package is missing") from exc
        return lz4.frame
    raise CodecError(f"unknown compression {name!r}; valid: {', '.join(COMPRESSORS)}")


@dataclass
class Message:
    """A decoded message: its kind, small metadata and named arrays (read-only views)."""

    kind: str
    meta: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def encode(
    kind: str,
    arrays: Mapping[str, np.ndarray] | None = None,
    meta: Mapping[str, Any] | None = None,
    compress: str = "raw",
    compress_min_bytes: int = 4096,
) -> bytes:
    """Serialise ``arrays`` (contiguous numeric numpy arrays) and ``meta`` into one message.

    ``compress`` applies to arrays of at least ``compress_min_bytes`` (image observations); small
    arrays always travel raw.
    """
    if compress not in COMPRESSORS:
        raise CodecError(f"unknown compression {compress!r}; valid: {', '.join(COMPRESSORS)}")
    specs: list[list[Any]] = []
    chunks: list[bytes | memoryview] = []
    for name, array in (arrays or {}).items():
        # np.require, not np.ascontiguousarray: the latter turns a 0-d array into shape (1,).
        arr = np.require(array, requirements="C")
        dtype = arr.dtype.name
        if dtype not in ALLOWED_DTYPES:
            raise CodecError(
                f"array {name!r} has dtype {dtype}; wire dtypes: {', '.join(sorted(ALLOWED_DTYPES))}"
            )
        data: bytes | memoryview = memoryview(arr).cast("B") if arr.size else b""
        codec = "raw"
        if compress != "raw" and arr.nbytes >= compress_min_bytes:
            module = _compressor(compress)
            data = module.compress(bytes(data))
            codec = compress
        specs.append([name, dtype, list(arr.shape), len(data), codec])
        chunks.append(data)
    header = msgpack.packb({"kind": kind, "meta": dict(meta or {}), "arrays": specs})
    if len(header) > MAX_HEADER_BYTES:
        raise CodecError(f"header of {len(header)} bytes exceeds {MAX_HEADER_BYTES}")
    return b"".join([_PREFIX.pack(MAGIC, VERSION, len(header)), header, *chunks])


def _validate_spec(spec: Any, index: int) -> tuple[str, np.dtype, tuple[int, ...], int, str]:
    if not (isinstance(spec, list) and len(spec) == 5):
        raise CodecError(f"array spec #{index} is not [name, dtype, shape, nbytes, codec]")
    name, dtype, shape, nbytes, codec = spec
    if not isinstance(name, str):
        raise CodecError(f"array spec #{index}: name must be a string, got {name!r}")
    if dtype not in ALLOWED_DTYPES:
        raise CodecError(f"array {name!r}: dtype {dtype!r} not allowed on the wire")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise CodecError(f"array {name!r}: bad shape {shape!r}")
    if not isinstance(nbytes, int) or nbytes < 0:
        raise CodecError(f"array {name!r}: bad byte count {nbytes!r}")
    if codec not in COMPRESSORS:
        raise CodecError(f"array {name!r}: unknown codec {codec!r}")
    return name, np.dtype(dtype), tuple(shape), nbytes, codec


def decode(
    data: bytes | bytearray | memoryview,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    kinds: frozenset[str] | set[str] | None = None,
) -> Message:
    """Parse and validate one message; raises :class:`CodecError` on anything malformed."""
    view = memoryview(data).cast("B")
    if len(view) > max_bytes:
        raise CodecError(f"message of {len(view)} bytes exceeds the limit of {max_bytes}")
    if len(view) < _PREFIX.size:
        raise CodecError(
            f"message of {len(view)} bytes is shorter than the {_PREFIX.size}-byte prefix"
        )
    magic, version, header_len = _PREFIX.unpack_from(view, 0)
    if magic != MAGIC:
        raise CodecError(f"foreign message: magic {bytes(magic)!r}, expected {MAGIC!r}")
    if version != VERSION:
        raise CodecError(f"unsupported wire version {version}; this build speaks {VERSION}")
    if header_len > MAX_HEADER_BYTES or _PREFIX.size + header_len > len(view):
        raise CodecError(f"declared header length {header_len} does not fit the message")
    start = _PREFIX.size
    try:
        header = msgpack.unpackb(
            view[start : start + header_len],
            raw=False,
            strict_map_key=True,  # msgpack bounds every length by the (bounded) header size
        )
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise CodecError(f"unreadable header: {type(exc).__name__}: {exc}") from exc
    if not isinstance(header, dict) or not isinstance(header.get("kind"), str):
        raise CodecError("header is not a map with a string 'kind'")
    kind = header["kind"]
    if kinds is not None and kind not in kinds:
        raise CodecError(f"unexpected message kind {kind!r}; expected one of {sorted(kinds)}")
    meta = header.get("meta", {})
    specs = header.get("arrays", [])
    if not isinstance(meta, dict) or not isinstance(specs, list):
        raise CodecError("header 'meta' must be a map and 'arrays' a list")
    offset = start + header_len
    arrays: dict[str, np.ndarray] = {}
    for index, spec in enumerate(specs):
        name, dtype, shape, nbytes, codec = _validate_spec(spec, index)
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if expected > max_bytes:
            raise CodecError(f"array {name!r}: declared shape {shape} exceeds the size limit")
        if offset + nbytes > len(view):
            raise CodecError(
                f"array {name!r}: declares {nbytes} bytes but only {len(view) - offset} remain"
            )
        payload = view[offset : offset + nbytes]
        offset += nbytes
        if codec != "raw":
            payload = _decompress(codec, payload, expected, name)
        if len(payload) != expected:
            raise CodecError(
                f"array {name!r}: {len(payload)} bytes do not match shape {shape} of {dtype.name}"
            )
        if name in arrays:
            raise CodecError(f"array {name!r} appears twice")
        arrays[name] = np.frombuffer(payload, dtype=dtype).reshape(shape)
    if offset != len(view):
        raise CodecError(f"{len(view) - offset} trailing bytes after the declared arrays")
    return Message(kind=kind, meta=meta, arrays=arrays)


def _decompress(codec: str, payload: memoryview, expected: int, name: str) -> memoryview:
    module = _compressor(codec)
    try:
        if codec == "zstd":
            out = module.ZstdDecompressor().decompress(bytes(payload), max_output_size=expected)
        else:
            out = module.decompress(bytes(payload))
    except Exception as exc:
        raise CodecError(f"array {name!r}: corrupt {codec} payload: {exc}") from exc
    if len(out) != expected:
        raise CodecError(f"array {name!r}: decompressed to {len(out)} bytes, expected {expected}")
    return memoryview(out)
