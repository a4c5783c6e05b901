"""Local transport: versioned shared-memory parameters and pipes carrying validated bytes."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest

from rlfleet.errors import TransportError
from rlfleet.transport.codec import encode
from rlfleet.transport.local import PipeInbox, PipeOutbox, SharedParams


def test_params_fetch_only_when_newer():
    block = SharedParams.create(1000)
    try:
        reader = SharedParams.attach(block.name, 1000)
        out = np.zeros(1000, np.float32)
        assert reader.fetch_if_newer(0, out) is None  # nothing published yet
        block.publish(np.arange(1000, dtype=np.float32), version=1)
        assert reader.fetch_if_newer(0, out) == 1
        np.testing.assert_array_equal(out, np.arange(1000))
        assert reader.fetch_if_newer(1, out) is None
        block.publish(np.full(1000, 7.0, np.float32), version=2)
        assert reader.fetch_if_newer(1, out) == 2 and (out == 7.0).all()
        with pytest.raises(TransportError, match="holds 1000 values, expected 10"):
            SharedParams.attach(block.name, 10)
        with pytest.raises(TransportError, match="shape"):
            block.publish(np.zeros(3, np.float32), 3)
        reader.close()
    finally:
        block.close()


def test_torn_read_is_detected_and_retried():
    block = SharedParams.create(8)
    try:
        block.publish(np.ones(8, np.float32), 1)
        block._header[0] += 1  # a writer "in progress" forever
        with pytest.raises(TransportError, match="kept changing"):
            block.fetch_if_newer(0, np.zeros(8, np.float32), retries=3)
    finally:
        block.close()


def test_pipe_inbox_decodes_and_counts_garbage():
    read, write = mp.Pipe(duplex=False)
    inbox, outbox = PipeInbox([read], kinds={"experience"}), PipeOutbox(write)
    outbox.push(encode("experience", {"x": np.arange(3)}, {"actor": 1}))
    outbox.push(b"not a message at all")
    outbox.push(encode("params", {"x": np.arange(3)}))  # foreign kind on this pipe
    messages = inbox.pull(timeout=1.0)
    assert [m.meta["actor"] for m in messages] == [1]
    assert inbox.rejected == 2 and inbox.received == 3
    outbox.close()
    assert inbox.pull(timeout=0.2) == []  # writer gone: the pipe is dropped, no exception
    assert inbox.num_sources == 0


def test_a_client_that_never_answers_the_challenge_does_not_block_others(tmp_path):
    """A silent client (a hung process, a port scanner) holds its own handshake only: a
    restarted actor connects at once, and the silent one is dropped at the deadline."""
    import socket
    import time

    from rlfleet.transport.local import AcceptLoop, connect

    address, key = str(tmp_path / "s.sock"), b"k" * 16
    accepted: list = []
    loop = AcceptLoop(address, key, accepted.append, handshake_timeout=0.5)
    try:
        silent = socket.socket(socket.AF_UNIX)
        silent.connect(address)  # connects, never reads the challenge nor answers it
        start = time.monotonic()
        good = connect(address, key, timeout=5.0)
        assert time.monotonic() - start < 2.0
        deadline = time.monotonic() + 5.0
        while (not accepted or loop.failed_handshakes < 1) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(accepted) == 1 and loop.failed_handshakes == 1
        assert silent.recv(4096) and silent.recv(4096) == b"", "dropped at the deadline"
        with pytest.raises(Exception, match="digest"):
            connect(address, b"x" * 16, timeout=2.0)  # a wrong key still fails
        good.close()
        silent.close()
    finally:
        loop.close()
