"""The Redis outbox while the server is away: the backlog stays bounded, the oldest messages are
dropped and counted, and so are the env steps they carried (not counted toward the budget)."""

from __future__ import annotations

import socket
import time

from rlfleet.transport.codec import encode
from rlfleet.transport.redis import RedisOutbox, connect


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nobody listens there once closed


def test_dropped_messages_count_their_env_steps():
    client = connect(f"redis://127.0.0.1:{_closed_port()}/0", check=False, connect_timeout=0.5)
    outbox = RedisOutbox(client, "down", "a1", max_backlog=2, block_timeout=0.5)
    outbox.push(encode("experience", None, {"env_steps": 10}))
    deadline = time.monotonic() + 5.0
    while outbox.errors == 0 and time.monotonic() < deadline:
        time.sleep(0.01)  # the sender finds the server away
    assert outbox.errors >= 1
    for steps in (20, 30, 40):
        outbox.push(encode("experience", None, {"env_steps": steps}))
    outbox.push(b"not a message")  # unreadable: dropped later, counted as 0 steps
    assert outbox.backlog == 2
    assert outbox.dropped == 3 and outbox.dropped_steps == 10 + 20 + 30
    outbox.close(timeout=0.1)
