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
drop the message, so no other exception type may escape on hostile input.

Memory is bounded by what the header declares, never by what a payload claims: sizes are exact
Python ints (``np.prod`` in int64 wraps around), every dimension and their product stay within
``max_bytes``, all arrays together too, and decompression streams into a buffer of the declared
size plus one byte, so a bomb is detected after one byte too many (see :func:`_decompress`).
"""

from __future__ import annotations

import reprlib
import struct
import sys
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
#: numpy 1.x builds at most 32 dimensions (numpy 2: 64); the wire allows what every numpy builds.
_MAX_NDIM = 32
#: lz4's smallest block size, the one :func:`encode` writes. The decompressor buffers one whole
#: block, so a frame may only declare bigger blocks for arrays at least that big.
_LZ4_BLOCK = 64 << 10
#: error messages show hostile values shortened (a 1 MiB name, a list nested 1000 deep).
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80
_REPR.maxlevel = 3


def _show(value: Any) -> str:
    return _REPR.repr(value)


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
        if arr.ndim > _MAX_NDIM:
            raise CodecError(
                f"array {name!r} has {arr.ndim} dimensions; the wire allows {_MAX_NDIM}"
            )
        data: bytes | memoryview = memoryview(arr).cast("B") if arr.size else b""
        codec = "raw"
        if compress != "raw" and arr.nbytes >= compress_min_bytes:
            module = _compressor(compress)
            if compress == "lz4":  # today's default, pinned: decode limits the block size
                data = module.compress(bytes(data), block_size=module.BLOCKSIZE_MAX64KB)
            else:
                data = module.compress(bytes(data))
            codec = compress
        specs.append([name, dtype, list(arr.shape), len(data), codec])
        chunks.append(data)
    header = msgpack.packb({"kind": kind, "meta": dict(meta or {}), "arrays": specs})
    if len(header) > MAX_HEADER_BYTES:
        raise CodecError(f"header of {len(header)} bytes exceeds {MAX_HEADER_BYTES}")
    return b"".join([_PREFIX.pack(MAGIC, VERSION, len(header)), header, *chunks])


def _validate_spec(spec: Any, index: int) -> tuple[str, np.dtype, tuple[int, ...], int, str]:
    """Type-check one ``[name, dtype, shape, nbytes, codec]`` entry; values may be any msgpack type."""
    if not (isinstance(spec, list) and len(spec) == 5):
        raise CodecError(f"array spec #{index} is not [name, dtype, shape, nbytes, codec]")
    name, dtype, shape, nbytes, codec = spec
    if not isinstance(name, str):
        raise CodecError(f"array spec #{index}: name must be a string, got {_show(name)}")
    # isinstance first: `in` hashes, and a list or map as dtype is unhashable (TypeError).
    if not (isinstance(dtype, str) and dtype in ALLOWED_DTYPES):
        raise CodecError(f"array {_show(name)}: dtype {_show(dtype)} not allowed on the wire")
    if not (
        isinstance(shape, list)
        and len(shape) <= _MAX_NDIM
        and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise CodecError(
            f"array {_show(name)}: bad shape {_show(shape)} (at most {_MAX_NDIM} dims)"
        )
    if not isinstance(nbytes, int) or isinstance(nbytes, bool) or nbytes < 0:
        raise CodecError(f"array {_show(name)}: bad byte count {_show(nbytes)}")
    if not (isinstance(codec, str) and codec in COMPRESSORS):
        raise CodecError(f"array {_show(name)}: unknown codec {_show(codec)}")
    return name, np.dtype(dtype), tuple(shape), nbytes, codec


def _declared_size(name: str, dtype: np.dtype, shape: tuple[int, ...], limit: int) -> int:
    """The array's size in bytes, in exact Python ints (``np.prod`` in int64 wraps around).

    Every dimension and the product of the non-zero ones must fit ``limit`` as well: shape
    ``(0, 2**62)`` declares 0 bytes, yet numpy refuses to build it ("array is too big").
    """
    size = bound = dtype.itemsize
    for dim in shape:
        size *= dim
        bound *= max(dim, 1)
        if bound > limit:
            raise CodecError(
                f"array {_show(name)}: shape {_show(shape)} exceeds the size limit of {limit}"
            )
    return size


def _read_header(view: memoryview, max_bytes: int) -> tuple[dict[str, Any], int, int]:
    """The header map of a message, where it starts and its length; raises CodecError."""
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
    return header, start, header_len


def read_meta(
    data: bytes | bytearray | memoryview, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
) -> dict[str, Any]:
    """A message's metadata map, from its header alone (no array is read or decompressed);
    raises :class:`CodecError` on a malformed header, like :func:`decode`."""
    header, _, _ = _read_header(memoryview(data).cast("B"), max_bytes)
    meta = header.get("meta", {})
    if not isinstance(meta, dict):
        raise CodecError("header 'meta' must be a map")
    return meta


def decode(
    data: bytes | bytearray | memoryview,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    kinds: frozenset[str] | set[str] | None = None,
) -> Message:
    """Parse and validate one message; raises :class:`CodecError` on anything malformed.

    ``max_bytes`` bounds the message on the wire and, separately, the arrays it declares (each,
    and all together), so array buffers stay within it whatever the payloads claim.
    """
    view = memoryview(data).cast("B")
    header, start, header_len = _read_header(view, max_bytes)
    kind = header["kind"]
    if kinds is not None and kind not in kinds:
        raise CodecError(f"unexpected message kind {_show(kind)}; expected one of {sorted(kinds)}")
    meta = header.get("meta", {})
    specs = header.get("arrays", [])
    if not isinstance(meta, dict) or not isinstance(specs, list):
        raise CodecError("header 'meta' must be a map and 'arrays' a list")
    limit = min(max_bytes, sys.maxsize)  # numpy indexes with ssize_t
    declared = 0
    offset = start + header_len
    arrays: dict[str, np.ndarray] = {}
    for index, spec in enumerate(specs):
        name, dtype, shape, nbytes, codec = _validate_spec(spec, index)
        if name in arrays:
            raise CodecError(f"array {_show(name)} appears twice")
        expected = _declared_size(name, dtype, shape, limit)
        declared += expected  # else N compressed arrays could each claim max_bytes
        if declared > limit:
            raise CodecError(f"arrays up to {_show(name)} declare {declared} bytes, over {limit}")
        if nbytes > len(view) - offset:
            raise CodecError(
                f"array {_show(name)}: declares {nbytes} bytes but only {len(view) - offset} remain"
            )
        payload: bytes | memoryview = view[offset : offset + nbytes]
        offset += nbytes
        if codec != "raw":
            payload = _decompress(codec, payload, expected, name)
        if len(payload) != expected:
            raise CodecError(
                f"array {_show(name)}: {len(payload)} bytes do not match shape {shape} of {dtype.name}"
            )
        arrays[name] = np.frombuffer(payload, dtype=dtype).reshape(shape)
    if offset != len(view):
        raise CodecError(f"{len(view) - offset} trailing bytes after the declared arrays")
    return Message(kind=kind, meta=meta, arrays=arrays)


def _decompress(codec: str, payload: memoryview, expected: int, name: str) -> bytes:
    """Decompress ``payload``, producing at most ``expected + 1`` bytes whatever it claims.

    One-shot APIs size their output from the frame header (python-zstandard ignores
    ``max_output_size`` when the frame states a content size; a skippable zstd frame makes it
    allocate up to 4 GiB; ``lz4.frame.decompress`` trusts the content size). So: a size the frame
    declares must equal ``expected``, then a streaming decoder reads into a buffer of
    ``expected + 1`` bytes; the extra byte tells "too long" from "exact". ``decompressobj`` would
    not do: its ``decompress`` has no output limit. Only the libraries' own error types are
    caught: they mean the payload is corrupt, anything else is a bug.
    """
    module = _compressor(codec)
    where = f"array {_show(name)}: {codec} payload"
    if codec == "zstd":
        try:
            claimed = module.frame_content_size(payload)  # -1 (not CONTENTSIZE_UNKNOWN): unstated
            if claimed not in (-1, expected):
                raise CodecError(f"{where} claims {claimed} bytes, the shape says {expected}")
            with module.ZstdDecompressor().stream_reader(payload) as reader:
                out = reader.read(expected + 1)
                # more frames may follow; read on (junk there raises ZstdError)
                if len(out) == expected and reader.read(1):
                    raise CodecError(f"{where} decompresses to more than {expected} bytes")
        except module.ZstdError as exc:
            raise CodecError(f"{where} is corrupt: {exc}") from exc
    else:
        try:
            info = module.get_frame_info(payload)
            if info["content_size"] not in (0, expected):  # 0: not stated
                claimed = info["content_size"]
                raise CodecError(f"{where} claims {claimed} bytes, the shape says {expected}")
            if info["block_size"] > max(expected, _LZ4_BLOCK):  # lz4 buffers a whole block
                raise CodecError(f"{where} uses {info['block_size']}-byte blocks for {expected}")
            decompressor = module.LZ4FrameDecompressor()
            # fed a block at a time: the decompressor copies all it is given, so a whole
            # bomb fed at once costs twice its wire size before the output limit stops it
            parts: list[bytes] = []
            made = fed = 0
            while fed < len(payload) and made <= expected and not decompressor.eof:
                chunk = payload[fed : fed + _LZ4_BLOCK]
                fed += len(chunk)
                parts.append(decompressor.decompress(chunk, max_length=expected + 1 - made))
                made += len(parts[-1])
            out = b"".join(parts)
        except RuntimeError as exc:  # python-lz4 reports every LZ4F error as RuntimeError
            raise CodecError(f"{where} is corrupt: {exc}") from exc
        whole = decompressor.eof and not decompressor.unused_data and fed == len(payload)
        if len(out) == expected and not whole:
            raise CodecError(f"{where} is truncated or has trailing bytes")
    if len(out) > expected:
        raise CodecError(f"{where} decompresses to more than the {expected} bytes of its shape")
    if len(out) < expected:
        raise CodecError(f"{where} decompresses to {len(out)} bytes, its shape says {expected}")
    return out
