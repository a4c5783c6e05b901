"""``GET`` of one large value straight into a reusable buffer: the parameter download's hot path.

redis-py hands a bulk reply to its parser in 64 kB reads, the parser (hiredis or Python) gathers
them into its own buffer and then builds a ``bytes`` object: two user-space copies of a 13 MB
model on top of the kernel's, ~8 ms of a ~25 ms fetch here. :class:`BulkReader` reads the reply
itself: the ``$<length>`` line, then ``recv_into`` the caller-reusable buffer, so the only copies
left are the kernel's and the final one into the actor's parameter vector (which must stay a
copy: a download that fails half way must not leave the actor with half-new weights).

It keeps one connection of its own, built by the client's pool class from the pool's settings,
so URL, password, TLS and database are exactly those of the client, and redis-py still does the
handshake (AUTH, SELECT, TLS) and sends the command. Only the reply is read from the socket
directly; where a redis-py version has no ``_sock`` attribute, the reply goes through its parser
(correct, just slower).

Failures keep redis-py's types: ``ConnectionError`` / ``TimeoutError`` (retryable, the
connection is closed and rebuilt on the next call), ``ResponseError`` for an error reply.
"""

from __future__ import annotations

import socket
from typing import Any

import redis
import redis.exceptions as rexc

from rlfleet.errors import CodecError

#: First read: the ``$<length>\r\n`` line and, for small values, all of it.
FIRST_READ = 64 << 10


class BulkReader:
    """``get(key, max_bytes)`` -> a memoryview of the value (valid until the next call), or
    None when the key does not exist. Not thread-safe: one reader per thread."""

    def __init__(self, client: redis.Redis) -> None:
        pool = client.connection_pool
        self._conn: Any = pool.connection_class(**pool.connection_kwargs)
        self._first = bytearray(FIRST_READ)
        self._buf = bytearray()
        self.reads = 0

    def close(self) -> None:
        self._conn.disconnect()

    def get(self, key: str, max_bytes: int) -> memoryview | None:
        """The value of ``key``; raises :class:`CodecError` (after closing the connection, the
        rest of the reply is not read) when it is longer than ``max_bytes``."""
        conn = self._conn
        conn.send_command("GET", key)  # connects and authenticates first if needed
        sock = getattr(conn, "_sock", None)
        if sock is None:  # a redis-py without the attribute: its parser reads the reply
            value = conn.read_response()
            return None if value is None else memoryview(value)
        try:
            return self._read_bulk(sock, max_bytes)
        except CodecError:
            conn.disconnect()
            raise
        except TimeoutError as exc:  # socket.timeout
            conn.disconnect()
            raise rexc.TimeoutError(f"Timeout reading the value of {key!r}") from exc
        except OSError as exc:
            conn.disconnect()
            raise rexc.ConnectionError(f"Error reading the value of {key!r}: {exc}") from exc
        except BaseException:  # anything else leaves the reply half read: start afresh
            conn.disconnect()
            raise

    def _read_bulk(self, sock: socket.socket, max_bytes: int) -> memoryview | None:
        first = memoryview(self._first)
        got = 0
        while True:  # the length line (whole in the first read, unless the network splits it)
            n = sock.recv_into(first[got:])
            if n == 0:
                raise rexc.ConnectionError("Redis closed the connection during a reply")
            got += n
            end = self._first.find(b"\r\n", 0, got)
            if end >= 0:
                break
            if got >= len(first):
                raise rexc.ConnectionError("reply line longer than 64 kB: not a bulk reply")
        line = bytes(first[:end])
        start = end + 2
        if line[:1] == b"-":  # an error reply, e.g. WRONGTYPE
            self.reads += 1
            raise rexc.ResponseError(line[1:].decode(errors="replace"))
        if line[:1] != b"$":
            raise rexc.ConnectionError(f"unexpected reply {line[:32]!r} to GET")
        try:
            length = int(line[1:])
        except ValueError:
            raise rexc.ConnectionError(f"unexpected reply {line[:32]!r} to GET") from None
        if length < 0:  # $-1: no such key
            self.reads += 1
            return None
        if length > max_bytes:
            raise CodecError(f"message of {length} bytes exceeds the limit of {max_bytes}")
        total = length + 2  # the value and its trailing CRLF
        if len(self._buf) < total:
            self._buf = bytearray(total)  # kept for the next download (same size each time)
        buf = memoryview(self._buf)
        have = min(got - start, total)
        buf[:have] = first[start : start + have]
        while have < total:
            n = sock.recv_into(buf[have:total])
            if n == 0:
                raise rexc.ConnectionError("Redis closed the connection during a reply")
            have += n
        if got - start > total or buf[length:total] != b"\r\n":
            raise rexc.ConnectionError("bulk reply not terminated by CRLF")
        self.reads += 1
        return buf[:length]
