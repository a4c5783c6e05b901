"""Redis transport against a real redis-server (see tests/conftest.py): round trips, bounds,
versioned parameters, hostile payloads, authentication, a server crash, heartbeats."""

from __future__ import annotations

import random
import socket
import struct
import threading
import time

import msgpack
import numpy as np
import pytest

from rlfleet.errors import ConfigError, TransportError
from rlfleet.transport.codec import encode
from rlfleet.transport.redis import (
    Heartbeat,
    RedisInbox,
    RedisOutbox,
    RedisParams,
    RunStatus,
    alive_actors,
    connect,
    delete_run,
    experience_key,
    pushed_per_actor,
    redact_url,
)
from rlfleet.transport.retry import Backoff

RUN = "test-run"


def fast_backoff() -> Backoff:
    return Backoff(base=0.01, cap=0.1)


def batch(i: int, n: int = 5) -> dict[str, np.ndarray]:
    return {
        "obs": np.full((n, 4), i, np.float32),
        "action": np.arange(n, dtype=np.int64),
        "priority": np.ones(n, np.float32),
    }


def payload(i: int) -> bytes:
    return encode("experience", batch(i), {"seq": i, "policy_version": 3})


def test_push_pull_round_trip_keeps_arrays_and_keys_under_the_run(redis_server):
    client = connect(redis_server.url)
    out = RedisOutbox(client, RUN, actor_id=7)
    inbox = RedisInbox(client, RUN)
    for i in range(3):
        out.push(payload(i))
    out.send("experience", batch(3), seq=3)
    assert out.flush(timeout=2.0)  # push only queues: the sender thread delivers
    got = inbox.pull(timeout=1.0, max_messages=10)
    assert [m.meta["seq"] for m in got] == [0, 1, 2, 3]
    for i, message in enumerate(got):
        for name, array in batch(i).items():
            np.testing.assert_array_equal(message.arrays[name], array)
            assert message.arrays[name].dtype == array.dtype
    assert inbox.received == 4 and inbox.rejected == 0
    assert inbox.bytes_received == sum(len(payload(i)) for i in range(3)) + len(
        encode("experience", batch(3), {"seq": 3})
    )
    assert out.pushed == 4 and out.backlog == 0 and out.dropped == 0
    assert pushed_per_actor(client, RUN) == {"7": 4}
    assert all(k.startswith(f"rlfleet:{RUN}:".encode()) for k in client.keys("*"))


def test_pull_blocks_until_a_message_arrives_or_the_timeout(redis_server):
    client = connect(redis_server.url)
    inbox = RedisInbox(client, RUN)
    start = time.monotonic()
    assert inbox.pull(timeout=0.3) == []
    waited = time.monotonic() - start
    assert 0.25 <= waited < 2.0  # a blocking wait, neither instant nor stuck
    pusher = connect(redis_server.url)
    timer = threading.Timer(0.2, lambda: RedisOutbox(pusher, RUN, 1).push(payload(9)))
    timer.start()
    start = time.monotonic()
    got = inbox.pull(timeout=5.0)
    timer.join()
    assert [m.meta["seq"] for m in got] == [9]
    assert time.monotonic() - start < 2.0  # woke on arrival, not at the timeout


def test_queue_stays_bounded_and_blocks_under_a_stalled_reader(redis_server):
    client = connect(redis_server.url)
    out = RedisOutbox(client, RUN, 1, max_queue=8, max_backlog=4, block_timeout=0.05)
    for i in range(20):
        out.push(payload(i))
    assert client.llen(experience_key(RUN)) == 8  # the server-side bound holds
    assert out.backlog == 4  # the local bound holds
    assert out.pushed == 8 and out.dropped == 20 - 8 - 4
    assert out.blocked_s >= 8 * 0.05  # each drop came after waiting for room (backpressure)
    # a reader frees room: a blocked push now returns as soon as space appears
    inbox = RedisInbox(client, RUN)
    assert [m.meta["seq"] for m in inbox.pull(0.5, max_messages=100)] == list(range(8))
    assert out.flush(timeout=2.0)
    assert [m.meta["seq"] for m in inbox.pull(0.5, max_messages=100)] == [16, 17, 18, 19]


def test_blocked_push_resumes_when_the_learner_makes_room(redis_server):
    client = connect(redis_server.url)
    out = RedisOutbox(client, RUN, 1, max_queue=2, max_backlog=1, block_timeout=10.0)
    for i in range(3):  # 2 in Redis, 1 in the backlog
        out.push(payload(i))
    inbox = RedisInbox(connect(redis_server.url), RUN)
    timer = threading.Timer(0.3, lambda: inbox.pull(1.0, max_messages=2))
    timer.start()
    start = time.monotonic()
    out.push(payload(3))  # must block until the timer's pull makes room
    waited = time.monotonic() - start
    timer.join()
    assert 0.25 <= waited < 5.0
    assert out.dropped == 0
    assert out.flush(timeout=2.0)
    assert [m.meta["seq"] for m in inbox.pull(0.5, 10)] == [2, 3]


def test_drop_oldest_mode_trims_on_the_server(redis_server):
    client = connect(redis_server.url)
    out = RedisOutbox(client, RUN, 1, max_queue=5, when_full="drop_oldest")
    for i in range(12):
        out.push(payload(i))
    assert out.flush(timeout=2.0)
    assert client.llen(experience_key(RUN)) == 5
    assert out.evicted == 7 and out.dropped == 0 and out.backlog == 0
    seqs = [m.meta["seq"] for m in RedisInbox(client, RUN).pull(0.5, 100)]
    assert seqs == list(range(7, 12))


def test_messages_queued_during_a_round_trip_share_the_next_one(redis_server):
    client = connect(redis_server.url)
    out = RedisOutbox(client, RUN, 3, max_queue=10_000, max_backlog=500)
    for i in range(300):
        out.push(payload(i))
    assert out.flush(timeout=10.0)
    assert out.pushed == 300 and out.dropped == 0 and out.errors == 0
    assert out.round_trips < out.pushed  # several messages per RPUSH, not one each
    got: list = []
    inbox = RedisInbox(client, RUN)
    while len(got) < 300:
        messages = inbox.pull(1.0, 128)
        assert messages
        got += messages
    assert [m.meta["seq"] for m in got] == list(range(300))  # in order
    assert pushed_per_actor(client, RUN) == {"3": 300}


def test_two_actors_overshoot_a_full_queue_by_at_most_a_chunk_each(redis_server):
    client = connect(redis_server.url)
    outs = [
        RedisOutbox(client, RUN, a, max_queue=6, max_backlog=50, block_timeout=0.05) for a in (1, 2)
    ]
    for i in range(40):
        for out in outs:
            out.push(payload(i))
    for out in outs:
        out.flush(timeout=0.3)  # the queue stays full: nothing more gets in
    length = client.llen(experience_key(RUN))
    # each pushes at most the room it saw (<= max_queue), so <= max_queue + one chunk per other
    assert 6 <= length <= 6 + 6
    assert sum(out.pushed for out in outs) == length
    assert all(out.backlog > 0 for out in outs)  # the rest waits locally (backpressure)


def test_a_server_error_in_the_sender_is_raised_to_the_actor(redis_server):
    client = connect(redis_server.url)
    client.set(experience_key(RUN), b"not a list")  # WRONGTYPE for LLEN / RPUSH
    out = RedisOutbox(client, RUN, 1)
    out.push(payload(0))
    with pytest.raises(TransportError, match="WRONGTYPE"):
        out.flush(timeout=2.0)
    with pytest.raises(TransportError, match="WRONGTYPE"):
        out.push(payload(1))
    assert out.backlog == 1  # the message was kept, not lost silently


def test_params_download_only_when_the_version_changes(redis_server, monkeypatch):
    learner = RedisParams(connect(redis_server.url), RUN)
    actor_client = connect(redis_server.url)
    actor = RedisParams(actor_client, RUN)
    out = np.zeros(1000, np.float32)
    assert actor.fetch_if_newer(0, out) is None  # nothing published yet
    learner.publish(np.arange(1000, dtype=np.float32), version=1)
    assert learner.published == 1 and learner.errors == 0

    reads: list[bytes] = []
    real_get = actor_client.get
    monkeypatch.setattr(
        actor_client, "get", lambda name: reads.append(name.encode()) or real_get(name)
    )
    assert actor.fetch_if_newer(0, out) == 1
    np.testing.assert_array_equal(out, np.arange(1000))
    assert reads == [actor.version_key.encode()]  # the data comes through the bulk reader
    data_reads = actor._reader.reads
    assert data_reads == 1
    bytes_after_first = actor.bytes_downloaded
    assert bytes_after_first > 4000 and actor.downloads == 1

    reads.clear()
    for _ in range(5):
        assert actor.fetch_if_newer(1, out) is None
    assert reads == [actor.version_key.encode()] * 5  # only the small version key
    assert actor._reader.reads == data_reads  # and no data
    assert actor.bytes_downloaded == bytes_after_first and actor.downloads == 1

    learner.publish(np.full(1000, 7.0, np.float32), version=2)
    assert actor.fetch_if_newer(1, out) == 2 and (out == 7.0).all()
    assert actor.downloads == 2

    with pytest.raises(TransportError, match=r"float32\[10\]"):
        actor.fetch_if_newer(0, np.zeros(10, np.float32))  # a different network
    with pytest.raises(TransportError, match="1-D float32"):
        learner.publish(np.zeros(3, np.float64), 3)


def test_corrupt_params_are_rejected_not_raised(redis_server):
    client = connect(redis_server.url)
    params = RedisParams(client, RUN)
    client.set(params.data_key, b"\x00garbage" * 10)
    client.set(params.version_key, 5)
    out = np.zeros(4, np.float32)
    assert params.fetch_if_newer(0, out) is None
    assert params.rejected == 1 and "magic" in params.last_error
    client.set(params.version_key, b"not-a-number")
    assert params.fetch_if_newer(0, out) is None and params.rejected == 2
    client.set(params.version_key, 6)
    client.delete(params.data_key)
    client.rpush(params.data_key, b"a list, not a string")
    assert params.fetch_if_newer(0, out) is None and params.rejected == 3
    assert "WRONGTYPE" in params.last_error
    # larger than the limit: refused from the length line, before the download
    small = RedisParams(client, RUN, max_bytes=100)
    client.delete(params.data_key)
    client.set(
        params.data_key, encode("params", {"flat": np.zeros(64, np.float32)}, {"version": 6})
    )
    assert small.fetch_if_newer(0, np.zeros(64, np.float32)) is None
    assert small.rejected == 1 and "exceeds the limit" in small.last_error
    assert small.downloads == 0 and small.bytes_downloaded == 0
    # the reader reconnects after that and still downloads what fits
    params.publish(np.full(4, 3.0, np.float32), 7)
    assert params.fetch_if_newer(6, out) == 7 and (out == 3.0).all()
    got = np.zeros(4, np.float32)
    assert small.fetch_if_newer(6, got) == 7 and (got == 3.0).all() and small.errors == 0


def _crafted(header: dict, body: bytes = b"", version: int = 1) -> bytes:
    raw = msgpack.packb(header)
    return struct.pack("<3sBI", b"RLF", version, len(raw)) + raw + body


def test_malformed_payloads_are_counted_and_never_raise(redis_server):
    client = connect(redis_server.url)
    inbox = RedisInbox(
        client,
        RUN,
        max_bytes=1 << 20,
        expect={"obs": ("float32", (4,)), "action": ("int64", ()), "priority": ("float32", ())},
    )
    good = payload(1)
    rng = random.Random(0)
    bad = [
        bytes(rng.getrandbits(8) for _ in range(200)),  # random bytes
        b"",  # empty
        good[:-7],  # truncated
        good[:3] + bytes([99]) + good[4:],  # wrong wire version
        b"PK\x03\x04" + good[4:],  # foreign magic
        encode("params", batch(1)),  # foreign kind on the experience list
        _crafted(  # huge declared shape
            {"kind": "experience", "meta": {}, "arrays": [["obs", "float32", [1 << 40], 4, "raw"]]},
            b"\x00" * 4,
        ),
        _crafted(  # huge declared byte count
            {"kind": "experience", "meta": {}, "arrays": [["obs", "uint8", [4], 1 << 40, "raw"]]},
            b"\x00" * 4,
        ),
        _crafted(  # object dtype (would mean pickle): refused
            {"kind": "experience", "meta": {}, "arrays": [["obs", "object", [1], 8, "raw"]]},
            b"\x00" * 8,
        ),
        struct.pack("<3sBI", b"RLF", 1, 0xFFFFFFF0) + b"x",  # huge header length
        encode("experience", {**batch(1), "obs": np.zeros((5, 4), np.float64)}),  # wrong dtype
        encode("experience", {**batch(1), "obs": np.zeros((5, 3), np.float32)}),  # wrong shape
        encode("experience", {"obs": np.zeros((5, 4), np.float32)}),  # missing arrays
        encode("experience", {**batch(1), "action": np.zeros(4, np.int64)}),  # ragged batch
        b"\x00" * ((1 << 20) + 1),  # larger than max_bytes
    ]
    client.rpush(experience_key(RUN), *bad[:7], good, *bad[7:])
    got: list = []
    for _ in range(5):
        got += inbox.pull(timeout=0.2, max_messages=4)
    assert [m.meta["seq"] for m in got] == [1]
    assert inbox.rejected == len(bad) and inbox.received == len(bad) + 1
    assert inbox.last_error  # the reason of the last rejection is kept


def test_wrong_or_missing_password_is_refused(redis_server):
    url = redis_server.url_with("not-the-password")
    with pytest.raises(TransportError) as info:
        connect(url)
    message = str(info.value)
    assert "not-the-password" not in message
    assert f"redis://:***@127.0.0.1:{redis_server.port}/0" in message
    with pytest.raises(TransportError, match="refused"):
        connect(f"redis://127.0.0.1:{redis_server.port}/0")  # no password at all
    with pytest.raises(ConfigError, match="valid: redis://, rediss://"):
        connect(f"http://127.0.0.1:{redis_server.port}")


def closed_port() -> int:
    """A loopback port with nothing listening (bound by the OS, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_server_is_a_transport_error_after_the_wait():
    start = time.monotonic()
    with pytest.raises(TransportError, match="unreachable after 0.3 s"):
        connect(f"redis://:pw@127.0.0.1:{closed_port()}/0", wait=0.3, backoff=fast_backoff())
    assert time.monotonic() - start < 5.0


def test_url_handling_without_a_server():
    assert redact_url("rediss://alice:pw@h.example:6380/2") == "rediss://alice:***@h.example:6380/2"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"
    client = connect("rediss://alice:pw@h.example:6380/2", check=False)
    kwargs = client.connection_pool.connection_kwargs
    assert client.connection_pool.connection_class.__name__ == "SSLConnection"
    assert (kwargs["username"], kwargs["password"], kwargs["port"], kwargs["db"]) == (
        "alice",
        "pw",
        6380,
        2,
    )
    assert kwargs["socket_timeout"] == 5.0
    with_ca = connect("rediss://:pw@h.example:6380/0?ssl_ca_certs=/etc/ca.pem", check=False)
    assert with_ca.connection_pool.connection_kwargs["ssl_ca_certs"] == "/etc/ca.pem"
    with pytest.raises(ConfigError, match="ssl_ca_certs") as info:  # TLS option on plain TCP
        connect("redis://:topsecret@h.example:6379/0?ssl_ca_certs=/etc/ca.pem", check=False)
    assert "topsecret" not in str(info.value)
    with pytest.raises(ConfigError, match="run name"):
        RedisOutbox(client, "bad:name", 1)
    with pytest.raises(ConfigError, match="when_full"):
        RedisOutbox(client, RUN, 1, when_full="grow")


def test_rediss_tls_round_trip_and_plain_clients_are_refused(tls_redis_server):
    client = connect(tls_redis_server.url, ssl_ca_certs=str(tls_redis_server.tls_cert))
    RedisOutbox(client, RUN, 1).push(payload(4))
    assert [m.meta["seq"] for m in RedisInbox(client, RUN).pull(1.0)] == [4]
    params = RedisParams(client, RUN)
    params.publish(np.arange(6, dtype=np.float32), 1)
    out = np.zeros(6, np.float32)
    assert params.fetch_if_newer(0, out) == 1 and out[5] == 5.0
    plain = tls_redis_server.url.replace("rediss://", "redis://")
    with pytest.raises(TransportError):  # no TLS handshake: the server drops the connection
        connect(plain, socket_timeout=1.0, connect_timeout=1.0)
    with pytest.raises(TransportError, match="certificate .* is not trusted"):  # unknown CA
        connect(tls_redis_server.url, socket_timeout=1.0, connect_timeout=1.0)


def test_server_crash_backlogs_bounded_then_flushes_and_reconnects(redis_server):
    out = RedisOutbox(
        connect(redis_server.url), RUN, 1, max_backlog=5, max_queue=100, backoff=fast_backoff()
    )
    inbox = RedisInbox(connect(redis_server.url), RUN, backoff=fast_backoff())
    params = RedisParams(connect(redis_server.url), RUN, backoff=fast_backoff())
    params.publish(np.ones(8, np.float32), 1)
    for i in range(3):
        out.push(payload(i))
    assert out.flush(timeout=2.0)
    assert [m.meta["seq"] for m in inbox.pull(1.0, 10)] == [0, 1, 2]

    redis_server.kill()
    for i in range(3, 15):  # 12 pushes while down: the backlog keeps the newest 5
        start = time.monotonic()
        out.push(payload(i))
        assert time.monotonic() - start < 1.0  # an outage never blocks the actor
    assert out.backlog == 5 and out.dropped == 7 and out.errors >= 1
    assert inbox.pull(0.2, 10) == [] and inbox.errors >= 1  # no exception for the learner
    assert params.fetch_if_newer(0, np.zeros(8, np.float32)) is None
    params.publish(np.ones(8, np.float32), 2)
    assert params.published == 1 and params.errors >= 2  # a failed fetch and a failed publish

    redis_server.start()
    assert out.flush(timeout=5.0)  # reconnects with backoff and flushes, oldest first
    got: list = []
    deadline = time.monotonic() + 5.0
    while len(got) < 5 and time.monotonic() < deadline:
        got += inbox.pull(0.5, 10)
    assert [m.meta["seq"] for m in got] == list(range(10, 15))
    out.push(payload(15))
    assert [m.meta["seq"] for m in inbox.pull(1.0, 10)] == [15]
    time.sleep(0.15)  # let the params backoff (cap 0.1 s) come due
    params.publish(np.full(8, 2.0, np.float32), 3)  # the server lost v1 (no persistence)
    assert params.published == 2
    assert params.fetch_if_newer(1, np.zeros(8, np.float32)) == 3


def test_heartbeat_expires_and_status_reaches_other_clients(redis_server):
    client = connect(redis_server.url)
    beat = Heartbeat(client, RUN, "a1", ttl=0.3, info={"envs": 4})
    other = Heartbeat(client, RUN, "a2", ttl=30.0)
    assert beat.beat() and other.beat()
    assert not beat.beat()  # rate-limited: nothing sent within ttl / 3
    assert alive_actors(client, RUN) == ["a1", "a2"]
    assert b'"envs": 4' in client.get(f"rlfleet:{RUN}:actors:a1")
    time.sleep(0.45)
    assert alive_actors(client, RUN) == ["a2"]  # a1 stopped beating: expired
    assert beat.beat()  # a member can rejoin at any time
    assert alive_actors(client, RUN) == ["a1", "a2"]
    other.leave()
    assert alive_actors(client, RUN) == ["a1"]

    learner_view, actor_view = RunStatus(client, RUN), RunStatus(connect(redis_server.url), RUN)
    assert not actor_view.stop_requested()
    learner_view.update(learner_version=12, updates=340)
    assert learner_view.request_stop("budget reached")
    assert actor_view.stop_requested()
    status = actor_view.read()
    assert status is not None
    assert status["learner_version"] == "12" and status["stop_reason"] == "budget reached"
    assert delete_run(client, RUN) >= 2  # status and the actors index (a1 may expire)
    assert client.keys(f"rlfleet:{RUN}:*") == []


def test_backoff_schedule_jitter_and_call():
    now = [0.0]
    backoff = Backoff(base=0.1, cap=1.0, jitter=0.0, clock=lambda: now[0])
    assert backoff.ready() and backoff.delay() == 0.0
    assert [backoff.failed() for _ in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert not backoff.ready() and backoff.remaining() == pytest.approx(1.0)
    now[0] = 1.0
    assert backoff.ready()
    backoff.succeeded()
    assert backoff.failed() == pytest.approx(0.1)
    jittered = Backoff(base=1.0, cap=1.0, jitter=0.5, rng=random.Random(1))
    delays = [jittered.failed() for _ in range(200)]
    assert 0.5 <= min(delays) < 0.6 and 0.9 < max(delays) <= 1.0

    attempts, sleeps = [], []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("down")
        return "up"

    b = Backoff(base=0.01, cap=0.01, jitter=0.0)
    assert b.call(flaky, (ConnectionError,), sleep=sleeps.append) == "up"
    assert sleeps == [0.01, 0.01] and b.failures == 0
    with pytest.raises(ValueError):
        b.call(lambda: int("x"), (ConnectionError,))  # not retryable: raised at once
    with pytest.raises(ConfigError, match="jitter"):
        Backoff(jitter=2.0)
