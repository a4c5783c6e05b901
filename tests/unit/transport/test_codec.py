"""Wire codec: round trips, and every kind of bad message is rejected with CodecError."""

from __future__ import annotations

import struct

import msgpack
import numpy as np
import pytest

from rlfleet.errors import CodecError
from rlfleet.transport.codec import MAGIC, decode, encode


def _batch():
    rng = np.random.default_rng(0)
    return {
        "obs": rng.normal(size=(5, 4)).astype(np.float32),
        "action": rng.integers(0, 3, size=5),
        "done": np.array([True, False, False, True, False]),
        "frames": rng.integers(0, 255, size=(2, 4, 84, 84), dtype=np.uint8),
        "empty": np.zeros((0, 3), np.float32),
        "scalar": np.array(7, np.int64),  # 0-d stays 0-d
        "strided": np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2],  # not contiguous
    }


def test_round_trip_preserves_arrays_and_meta():
    batch = _batch()
    message = decode(
        encode("experience", batch, {"actor": 3, "policy_version": 17, "x": [1.5, None]})
    )
    assert message.kind == "experience"
    assert message.meta == {"actor": 3, "policy_version": 17, "x": [1.5, None]}
    for name, array in batch.items():
        assert message.arrays[name].dtype == array.dtype
        assert message.arrays[name].shape == array.shape, name
        np.testing.assert_array_equal(message.arrays[name], array)


@pytest.mark.parametrize("codec", ["zstd", "lz4"])
def test_compressed_round_trip(codec):
    pytest.importorskip("zstandard" if codec == "zstd" else "lz4")
    batch = _batch()
    # game frames are mostly background with a few objects: compressible, unlike random bytes
    frames = np.zeros((2, 4, 84, 84), np.uint8)
    frames[:, :, 10:20, 30:34] = 200
    frames[:, :, 60:62, :] = 87
    batch["frames"] = frames
    raw = encode("experience", batch, compress=codec)
    assert len(raw) < len(encode("experience", batch))
    np.testing.assert_array_equal(decode(raw).arrays["frames"], batch["frames"])


def test_object_dtype_is_refused_on_encode():
    with pytest.raises(CodecError, match="dtype object"):
        encode("x", {"bad": np.array([object()], dtype=object)})


def _frame(header: object, payload: bytes = b"", version: int = 1, magic: bytes = MAGIC) -> bytes:
    head = msgpack.packb(header)
    return struct.pack("<3sBI", magic, version, len(head)) + head + payload


@pytest.mark.parametrize(
    "data, match",
    [
        (b"", "shorter"),
        (b"\x00" * 64, "foreign"),
        (_frame({"kind": "x"}, version=9), "version"),
        (_frame({"kind": "x"}, magic=b"GET"), "foreign"),
        (struct.pack("<3sBI", MAGIC, 1, 10_000) + b"abc", "header length"),
        (_frame([1, 2, 3]), "not a map"),
        (
            _frame({"kind": "x", "arrays": [["a", "object", [1], 8, "raw"]]}, b"\0" * 8),
            "not allowed",
        ),
        (_frame({"kind": "x", "arrays": [["a", "float32", [2], 8, "raw"]]}, b"\0" * 4), "remain"),
        (
            _frame({"kind": "x", "arrays": [["a", "float32", [3], 8, "raw"]]}, b"\0" * 8),
            "do not match",
        ),
        (
            _frame({"kind": "x", "arrays": [["a", "uint8", [1 << 40], 8, "raw"]]}, b"\0" * 8),
            "exceeds",
        ),
        (_frame({"kind": "x", "arrays": [["a", "uint8", [-1], 0, "raw"]]}), "bad shape"),
        (_frame({"kind": "x", "arrays": [["a", "uint8", [1], 1, "rot13"]]}, b"\0"), "codec"),
        (_frame({"kind": "x", "arrays": []}, b"extra"), "trailing"),
        (
            _frame(
                {
                    "kind": "x",
                    "arrays": [["a", "uint8", [1], 1, "raw"], ["a", "uint8", [1], 1, "raw"]],
                },
                b"\0\0",
            ),
            "twice",
        ),
    ],
)
def test_malformed_messages_are_rejected(data, match):
    with pytest.raises(CodecError, match=match):
        decode(data)


def test_random_bytes_and_truncations_never_escape_as_other_errors():
    rng = np.random.default_rng(1)
    good = encode("experience", _batch(), {"a": 1})
    for _ in range(300):
        data = rng.integers(0, 256, size=int(rng.integers(0, 200)), dtype=np.uint8).tobytes()
        with pytest.raises(CodecError):
            decode(MAGIC + data if rng.random() < 0.5 else data)
    for cut in range(0, len(good) - 1, 997):
        with pytest.raises(CodecError):
            decode(good[:cut])


def test_size_limit_and_kind_filter():
    raw = encode("experience", _batch())
    with pytest.raises(CodecError, match="exceeds the limit"):
        decode(raw, max_bytes=100)
    with pytest.raises(CodecError, match="unexpected message kind"):
        decode(raw, kinds={"params"})
