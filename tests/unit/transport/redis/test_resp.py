"""RESP packing of the experience push: what the server parses, and no copy of big arguments."""

from __future__ import annotations

import pytest

from rlfleet.transport.redis.resp import JOIN_LIMIT, pack

hiredis = pytest.importorskip("hiredis")


def _parse(buffers: list[bytes]) -> list:
    reader = hiredis.Reader()  # RESP arrays of bulk strings: the same grammar as commands
    reader.feed(b"".join(buffers))
    commands = []
    while (item := reader.gets()) is not False:
        commands.append(item)
    return commands


def test_pack_round_trips_through_a_resp_parser_and_never_copies_big_arguments():
    small, empty = b"\x00\r\n$3\r\nabc" * 100, b""  # binary-safe: CRLF and $ inside values
    big = bytes(range(256)) * (JOIN_LIMIT // 256 + 1)
    buffers = pack(
        ("RPUSH", "rlfleet:r:experience", small, big, empty, big), ("HINCRBY", "h", "a", 4)
    )
    assert _parse(buffers) == [
        [b"RPUSH", b"rlfleet:r:experience", small, big, empty, big],
        [b"HINCRBY", b"h", b"a", b"4"],
    ]
    assert sum(b is big for b in buffers) == 2  # handed over as they are
    assert len(buffers) == 5  # small arguments joined: head, big, middle, big, tail


def test_small_commands_are_one_buffer():
    buffers = pack(("LLEN", b"k"), ("PING",))
    assert len(buffers) == 1
    assert buffers[0] == b"*2\r\n$4\r\nLLEN\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n"
