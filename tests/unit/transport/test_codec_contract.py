"""The codec's contract under hostile input: ``decode`` returns a Message or raises CodecError,
nothing else, and never allocates more than the header declares.

* Regression tests for what an independent probe found (each failed on the codec before the fix):
  unhashable dtypes, int64-wrapping shapes, too many or absurd dimensions, a bool byte count,
  values nested too deep to print, arrays that together declare more than ``max_bytes``.
* A hypothesis fuzz test over random bytes, mutated valid messages and hand-built headers.
* Decompression bombs, measured twice: tracemalloc sees the output buffers (python-zstandard and
  python-lz4 allocate them with PyMem / PyBytes, which is where the old codec blew up), but not
  the libraries' own malloc (contexts, windows, lz4 block buffers), so a subprocess also measures
  the peak resident set: VmHWM from /proc, reset just before decoding. Not ``getrusage()``:
  a child's ``ru_maxrss`` starts at its parent's peak (inherited at exec) and cannot be reset.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
import tracemalloc
from functools import cache
from pathlib import Path

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlfleet.errors import CodecError
from rlfleet.transport import codec

try:
    import lz4.frame
    import zstandard
except ModuleNotFoundError:  # the test extras install both; without them only bombs are skipped
    zstandard = lz4 = None
needs_compression = pytest.mark.skipif(zstandard is None, reason="zstandard and lz4 not installed")

MIB = 1 << 20


def _frame(header: object, payload: bytes = b"") -> bytes:
    head = msgpack.packb(header)
    return struct.pack("<3sBI", codec.MAGIC, codec.VERSION, len(head)) + head + payload


def _one(dtype: object, shape: object, nbytes: object, codec_name: object = "raw", payload=b""):
    return _frame({"kind": "x", "arrays": [["a", dtype, shape, nbytes, codec_name]]}, payload)


# --- regression tests: each raised TypeError / ValueError / RecursionError or decoded before ---


@pytest.mark.parametrize("dtype", [["uint8"], {"uint8": 1}], ids=["list", "map"])
def test_unhashable_dtype_is_a_codec_error(dtype):
    with pytest.raises(CodecError, match="not allowed"):
        codec.decode(_one(dtype, [1], 1, payload=b"\0"))


@pytest.mark.parametrize(
    "shape", [[1 << 32, 1 << 32], [1 << 62, 4], [1 << 63, 2], [(1 << 64) - 1, 2]]
)
def test_shape_whose_int64_product_wraps_is_a_codec_error(shape):
    with pytest.raises(CodecError, match="exceeds the size limit"):
        codec.decode(_one("uint8", shape, 0))


@pytest.mark.parametrize("ndim", [33, 65])
def test_more_dimensions_than_every_numpy_builds_is_a_codec_error(ndim):
    with pytest.raises(CodecError, match="bad shape"):
        codec.decode(_one("uint8", [1] * ndim, 1, payload=b"\0"))


def test_encode_refuses_what_decode_would_refuse():
    with pytest.raises(CodecError, match="dimensions"):
        codec.encode("x", {"a": np.zeros([1] * 33, np.uint8)})


@pytest.mark.parametrize(
    "dtype, shape",
    [("uint8", [0, (1 << 64) - 1]), ("uint8", [0, 1 << 63]), ("uint8", [0, 1 << 62, 4])]
    + [("float64", [0, 1 << 61]), ("uint8", [0, codec.DEFAULT_MAX_MESSAGE_BYTES + 1])],
)
def test_absurd_dimensions_of_empty_arrays_are_codec_errors(dtype, shape):
    with pytest.raises(CodecError, match="exceeds the size limit"):
        codec.decode(_one(dtype, shape, 0))


def test_byte_count_must_be_an_int_not_a_bool():
    with pytest.raises(CodecError, match="byte count"):
        codec.decode(_one("uint8", [1], True, payload=b"\0"))


@pytest.mark.parametrize("field", range(5))
def test_values_nested_too_deep_to_print_are_codec_errors(field):
    nested: object = 0
    for _ in range(1000):  # msgpack allows ~1000 levels; repr() hits the recursion limit
        nested = [nested]
    spec = ["a", "uint8", [1], 1, "raw"]
    spec[field] = nested
    with pytest.raises(CodecError):
        codec.decode(_frame({"kind": "x", "arrays": [spec]}, b"\0"))


@needs_compression
@pytest.mark.parametrize("name", ["zstd", "lz4"])
def test_arrays_together_may_not_declare_more_than_max_bytes(name):
    # each array is within the limit, so the old per-array check let N of them claim N * max_bytes
    zeros = np.zeros(600 << 10, np.uint8)
    raw = codec.encode("x", {"a": zeros, "b": zeros}, compress=name)
    assert codec.decode(raw, max_bytes=2 * MIB).arrays["b"].nbytes == zeros.nbytes
    with pytest.raises(CodecError, match="declare"):
        codec.decode(raw, max_bytes=MIB)


@pytest.mark.parametrize(
    "header",
    [
        {"kind": 1},
        {"kind": b"x"},
        {"kind": None},
        {"kind": ["x"]},
        {"kind": "x", "meta": [1]},
        {"kind": "x", "meta": "m"},
        {"kind": "x", "arrays": {"a": 1}},
        {"kind": "x", "arrays": [["a", "uint8", [1], 1]]},
        {"kind": "x", "arrays": [[1, "uint8", [1], 1, "raw"]]},
        {"kind": "x", "arrays": [["a", "uint8", [1.0], 1, "raw"]]},
        {"kind": "x", "arrays": [["a", "uint8", [True], 1, "raw"]]},
        {"kind": "x", "arrays": [["a", "uint8", [1], 1.0, "raw"]]},
        {"kind": "x", "arrays": [["a", "uint8", [1], 1, ["raw"]]]},
        {"kind": "x", "arrays": [["a", "uint8", [1], (1 << 64) - 1, "raw"]]},
        {"kind": "x", "arrays": [["a", "uint8", [1], 1, "raw"], ["a", "uint8", [0], 0, "raw"]]},
    ],
)
def test_ill_typed_headers_are_codec_errors(header):
    with pytest.raises(CodecError):
        codec.decode(_frame(header, b"\0"))


# --- compressed payloads: exact sizes decode, anything else is refused ---


@needs_compression
@pytest.mark.parametrize(
    "name, options",
    [
        ("zstd", {"write_content_size": False}),
        ("lz4", {"store_size": False}),
        ("lz4", {"block_size": 7, "content_checksum": True}),  # 7: BLOCKSIZE_MAX4MB
    ],
    ids=["zstd-unsized", "lz4-unsized", "lz4-4MiB-blocks"],
)
def test_valid_frames_from_other_producers_still_decode(name, options):
    array = np.arange(5 * MIB, dtype=np.uint8)  # big enough for 4 MiB blocks
    if name == "zstd":
        payload = zstandard.ZstdCompressor(**options).compress(array.tobytes())
    else:
        payload = lz4.frame.compress(array.tobytes(), **options)
    message = codec.decode(_one("uint8", [array.size], len(payload), name, payload))
    np.testing.assert_array_equal(message.arrays["a"], array)


@needs_compression
@pytest.mark.parametrize("name", ["zstd", "lz4"])
@pytest.mark.parametrize("change", ["truncate", "trailing junk", "one byte more", "one byte less"])
def test_compressed_payload_must_hold_exactly_the_declared_bytes(name, change):
    data = bytes(range(256)) * 64
    if change == "one byte more":
        data += b"!"
    elif change == "one byte less":
        data = data[:-1]
    module = zstandard if name == "zstd" else lz4.frame
    payload = module.compress(data)
    if change == "truncate":
        payload = payload[:-6]
    elif change == "trailing junk":
        payload += b"junk"
    with pytest.raises(CodecError, match=name):
        codec.decode(_one("uint8", [256 * 64], len(payload), name, payload))


# --- property-based fuzzing ---
# Strategies are built once, at import: built inside a draw, hypothesis re-validates them each time.
# Each header field is plausible most of the time and any msgpack value otherwise, so that most
# examples get past the first check and reach the deeper ones.

_ONE_IN_EIGHT = st.integers(0, 7)
_BIG = [1 << 31, 1 << 32, 1 << 61, 1 << 62, 1 << 63, (1 << 64) - 1, -1, -(1 << 63)]
_DIMS = st.sampled_from(list(range(9)) + _BIG) | st.integers(-(1 << 63), (1 << 64) - 1)
# values of every msgpack type; a fixed list is far cheaper to draw from than composed strategies
_ODD_SCALARS = [None, True, False, 1.0, float("nan"), float("inf"), "", "\x00", b"", b"uint8"]
_ODD_SCALARS += [msgpack.ExtType(1, b"x"), "object", "<f4", "float128", "U8"]
_ODD_SCALARS += sorted(codec.ALLOWED_DTYPES) + list(codec.COMPRESSORS)
_ODD_CONTAINERS = [[], [1], [[1]], ["uint8"], [1.5], [None], [-1, 2], [1 << 63, 2], {}, {"a": 1}]
_ODD_CONTAINERS += [{"uint8": "raw"}, {"kind": "x"}, [["a", "uint8", [1], 1, "raw"]]]
_VALUES = st.one_of(st.sampled_from(_ODD_SCALARS), st.sampled_from(_ODD_CONTAINERS), _DIMS)


@st.composite
def _mostly(draw, good: st.SearchStrategy, odd_one_in: int = 4) -> object:
    """``good``, except one time in ``odd_one_in``: any msgpack value."""
    return draw(_VALUES) if draw(st.integers(1, odd_one_in)) == odd_one_in else draw(good)


def _compressed(name: str, data: bytes) -> bytes:
    if zstandard is None:
        return data
    return zstandard.compress(data) if name == "zstd" else lz4.frame.compress(data)


_BYTE = st.integers(0, 255)
_ANYWHERE = st.integers(0, 1 << 20)  # taken modulo the length
_PAYLOAD_KIND = st.sampled_from(["compressed", "zeros", "corrupt", "random"])
_RANDOM_PAYLOAD = st.binary(max_size=64)
_ZEROS = st.integers(0, 256 << 10)
_SMALL_DATA = st.binary(max_size=256)
_NAME = _mostly(st.sampled_from(["a", "b", "obs"]), odd_one_in=8)
_DTYPE = _mostly(st.sampled_from(sorted(codec.ALLOWED_DTYPES)))
_SMALL_DIMS = _mostly(st.integers(0, 300), odd_one_in=16)
_FEW_DIMS = st.lists(_SMALL_DIMS, max_size=4)
_HUGE_DIMS = st.lists(_DIMS, min_size=2, max_size=3)
_MANY_DIMS = st.lists(st.integers(0, 2), min_size=30, max_size=70)
_SHAPE = _mostly(st.sampled_from([_FEW_DIMS] * 6 + [_HUGE_DIMS, _MANY_DIMS]).flatmap(lambda s: s))
_CODEC = _mostly(st.sampled_from(codec.COMPRESSORS))
_BAD_SPEC = st.lists(_VALUES, max_size=7)
_KIND = _mostly(st.sampled_from(["x", "experience"]), odd_one_in=16)
_META = _mostly(st.dictionaries(st.sampled_from(["a", "b"]), _VALUES, max_size=2), odd_one_in=16)


@st.composite
def _payloads(draw, codec_name: object) -> bytes:
    kind = draw(_PAYLOAD_KIND)
    if kind == "random" or codec_name not in ("zstd", "lz4"):
        return draw(_RANDOM_PAYLOAD)
    data = bytes(draw(_ZEROS)) if kind == "zeros" else draw(_SMALL_DATA)
    payload = _compressed(codec_name, data)
    if kind == "corrupt":
        at = draw(_ANYWHERE) % len(payload)
        payload = payload[:at] + bytes([draw(_BYTE)]) + payload[at + 1 :]
    return payload


@st.composite
def _spec_and_payload(draw) -> tuple[object, bytes]:
    if draw(_ONE_IN_EIGHT) == 7:  # 7, not 0: hypothesis favours 0 early on
        return draw(_BAD_SPEC), b""
    name, dtype, shape, codec_name = draw(_NAME), draw(_DTYPE), draw(_SHAPE), draw(_CODEC)
    payload = draw(_payloads(codec_name))
    nbytes = draw(_VALUES) if draw(_ONE_IN_EIGHT) == 7 else len(payload)
    return [name, dtype, shape, nbytes, codec_name], payload


_SPECS = st.lists(_spec_and_payload(), min_size=1, max_size=2)


@st.composite
def _built_messages(draw) -> bytes:
    header: dict[str, object] = {"kind": draw(_KIND)}
    if draw(_ONE_IN_EIGHT) != 7:
        header["meta"] = draw(_META)
    pairs = draw(_SPECS)
    header["arrays"] = draw(_mostly(st.just([spec for spec, _ in pairs]), odd_one_in=16))
    return _frame(header, b"".join(payload for _, payload in pairs))


@cache
def _valid_messages() -> tuple[bytes, ...]:
    rng = np.random.default_rng(0)
    arrays = {
        "obs": rng.normal(size=(3, 4)).astype(np.float32),
        "frames": np.repeat(np.arange(64, dtype=np.uint8), 128).reshape(2, 64, 64),
        "empty": np.zeros((0, 3), np.int16),
        "scalar": np.array(7, np.int64),
    }
    names = ("raw", "zstd", "lz4") if zstandard is not None else ("raw",)
    return tuple(codec.encode("x", arrays, {"v": 1}, compress=name) for name in names)


_OPS = st.lists(st.sampled_from(["flip", "truncate", "insert", "delete"]), min_size=1, max_size=4)
_INSERT = st.binary(min_size=1, max_size=8)


@st.composite
def _mutated_messages(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(_valid_messages())))
    for op in draw(_OPS):
        at = draw(_ANYWHERE) % (len(data) + 1)
        if op == "flip" and at < len(data):
            data[at] ^= draw(_BYTE) or 1
        elif op == "truncate":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(_INSERT)
        else:
            del data[at : at + 1 + draw(_BYTE) % 16]
    return bytes(data)


def _with_prefix(header_and_rest: bytes) -> bytes:
    return struct.pack("<3sBI", codec.MAGIC, codec.VERSION, len(header_and_rest)) + header_and_rest


_MESSAGES = st.one_of(
    st.binary(max_size=200),
    st.binary(max_size=200).map(_with_prefix),  # garbage msgpack
    _mutated_messages(),
    _built_messages(),
    _built_messages(),  # twice: the richest source
)


# CI runs 2,000 examples; the acceptance run sets RLFLEET_FUZZ_EXAMPLES=100000
@settings(
    max_examples=int(os.environ.get("RLFLEET_FUZZ_EXAMPLES", "2000")),
    deadline=None,
    database=None,  # no example database (hypothesis still caches a little in .hypothesis/)
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=_MESSAGES, max_bytes=st.sampled_from([codec.DEFAULT_MAX_MESSAGE_BYTES, 64 << 10]))
def test_fuzzed_messages_decode_or_raise_codec_error(data, max_bytes):
    try:
        message = codec.decode(data, max_bytes=max_bytes)
    except CodecError:
        return
    assert isinstance(message, codec.Message)


# --- decompression bombs: small messages declaring uint8[8] ---


def _zstd_claiming(size: int) -> bytes:
    """A hand-made zstd frame: single segment, 8-byte content size, 11 RLE blocks of 128 KiB."""
    header = struct.pack("<IBQ", 0xFD2FB528, 0b1110_0000, size)
    block = struct.pack("<I", (128 << 10) << 3 | 1 << 1)[:3] + b"\0"  # RLE, not last
    return header + block * 11


def _lz4_claiming(size: int) -> bytes:
    compressor = lz4.frame.LZ4FrameCompressor()  # no flush(): it would check the size
    return compressor.begin(source_size=size) + compressor.compress(bytes(64 << 10))


_BOMBS = {
    "zstd-64MiB": lambda: zstandard.compress(bytes(64 * MIB)),
    "zstd-64MiB-unsized": lambda: zstandard.ZstdCompressor(write_content_size=False).compress(
        bytes(64 * MIB)
    ),
    "zstd-claims-16GiB": lambda: _zstd_claiming(16 << 30),
    "zstd-skippable-4GiB": lambda: struct.pack("<II", 0x184D2A50, 0xFFFF_FFF0) + bytes(8),
    "lz4-64MiB": lambda: lz4.frame.compress(bytes(64 * MIB)),
    "lz4-64MiB-unsized": lambda: lz4.frame.compress(bytes(64 * MIB), store_size=False),
    "lz4-64MiB-4MiB-blocks": lambda: lz4.frame.compress(
        bytes(64 * MIB), block_size=lz4.frame.BLOCKSIZE_MAX4MB, store_size=False
    ),
    "lz4-claims-16GiB": lambda: _lz4_claiming(16 << 30),
}


@cache
def _bomb(name: str) -> bytes:
    payload = _BOMBS[name]()
    return _one("uint8", [8], len(payload), name.split("-")[0], payload)


@needs_compression
@pytest.mark.parametrize("name", sorted(_BOMBS))
def test_bomb_is_refused_within_1mib_traced(name):
    message = _bomb(name)
    assert len(message) < 300_000
    tracemalloc.start()
    try:
        with pytest.raises(CodecError):
            codec.decode(message)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= MIB, f"{name}: {peak} bytes traced"


_RSS_PROBE = textwrap.dedent(
    """
    import importlib.util, json, re, sys
    import numpy as np
    from rlfleet.errors import CodecError
    spec = importlib.util.spec_from_file_location("codec_under_test", sys.argv[1])
    codec = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(codec)

    def status(key):
        return int(re.search(key + r":\\s+(\\d+) kB", open("/proc/self/status").read())[1])

    def reset_peak():  # Linux >= 4.0: VmHWM := current RSS
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    for name in ("zstd", "lz4"):  # warm up: imports, first-call code paths, decoder contexts
        codec.decode(codec.encode("x", {"a": np.zeros(70000, np.uint8)}, compress=name))
    out = {}
    for path in sys.argv[2:]:
        data = open(path, "rb").read()
        reset = reset_peak()
        before = status("VmHWM" if reset else "VmRSS")  # without a reset: an upper bound
        try:
            codec.decode(data)
            outcome = "decoded"
        except CodecError:
            outcome = "CodecError"
        out[path] = [outcome, status("VmHWM") - before, reset]
    print(json.dumps(out))
    """
)


def _peak_rss_kib(paths: list[Path]) -> dict[str, list]:
    result = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, codec.__file__, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@needs_compression
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS read from /proc")
def test_bombs_are_refused_within_1mib_peak_rss(tmp_path):
    paths = []
    for name in sorted(_BOMBS):
        paths.append(tmp_path / name)
        paths[-1].write_bytes(_bomb(name))
    measured = _peak_rss_kib(paths)
    if not all(reset for _, _, reset in measured.values()):  # one process each, or peaks add up
        measured = {str(p): _peak_rss_kib([p])[str(p)] for p in paths}
    for path, (outcome, extra_kib, _) in measured.items():
        assert outcome == "CodecError", Path(path).name
        assert extra_kib <= 1024, f"{Path(path).name}: peak RSS +{extra_kib} KiB"
