"""How local roles find each other: authenticated Unix-socket connections, bytes only.

An address is a Unix-socket path, or ``tcp://HOST:PORT`` for a status link that crosses hosts
(a cluster engine places the roles on other machines while the launcher stays on the driver's
host); the handshake and the bytes-only rule are the same for both.

The launcher listens for *status* links (metrics up, commands down); the learner listens for
*experience* links from actors. Connections use ``multiprocessing.connection`` with an authkey
(HMAC challenge) and only ``send_bytes``/``recv_bytes``, so nothing is ever unpickled. Because
actors dial in, a restarted or newly started actor simply connects again.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import (
    Client,
    Connection,
    Listener,
    answer_challenge,
    deliver_challenge,
)
from typing import Any

from rlfleet.errors import CodecError, TransportError
from rlfleet.transport.codec import decode, encode
from rlfleet.transport.ports import CMD_STOP

#: Seconds a connecting client has to complete the authentication handshake.
HANDSHAKE_TIMEOUT_S = 5.0


TCP_SCHEME = "tcp://"


def parse_address(address: str) -> tuple[str, Any]:
    """``(family, address)`` for ``multiprocessing.connection``: ``tcp://HOST:PORT`` is
    ``("AF_INET", (HOST, PORT))``, anything else a Unix-socket path."""
    if not address.startswith(TCP_SCHEME):
        return "AF_UNIX", address
    host, sep, port = address[len(TCP_SCHEME) :].rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise TransportError(f"bad TCP address {address!r}; expected tcp://HOST:PORT")
    return "AF_INET", (host, int(port))


def connect(address: str, authkey: bytes, timeout: float = 60.0) -> Connection:
    """Dial a listener, retrying while it is not up yet (roles start in any order)."""
    family, where = parse_address(address)
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        try:
            return Client(where, family=family, authkey=authkey)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            if time.monotonic() > deadline:
                raise TransportError(f"nobody listens on {address} after {timeout:.0f} s") from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _set_timeout(conn: Connection, seconds: float) -> None:
    """Bound every blocking read and write on ``conn`` by ``seconds`` (0: no bound). The socket
    stays in blocking mode (``SO_RCVTIMEO``/``SO_SNDTIMEO``), so ``Connection`` works as usual
    and a read past the deadline raises ``OSError``."""
    sock = socket.socket(fileno=os.dup(conn.fileno()))  # the options belong to the socket
    try:
        whole = int(seconds)
        value = struct.pack("ll", whole, int((seconds - whole) * 1e6))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
    finally:
        sock.close()


class AcceptLoop:
    """Accepts connections on a Unix socket (or ``tcp://HOST:PORT``; port 0 picks a free one,
    :attr:`address` says which) and hands the authenticated ones to ``on_connect``.

    The accept loop only accepts: each connection's HMAC handshake runs in a thread of its own
    with a deadline (``handshake_timeout`` seconds), so a client that never answers the
    challenge delays nobody else (a restarted actor reconnects at once) and is dropped at the
    deadline. At most ``MAX_HANDSHAKES`` handshakes run at a time; connections beyond that are
    closed at once. Failed handshakes (wrong key, silence, hang-up) are counted.
    """

    #: Handshakes under way at most (each a short-lived thread).
    MAX_HANDSHAKES = 32

    def __init__(
        self,
        address: str,
        authkey: bytes,
        on_connect: Callable[[Connection], None],
        handshake_timeout: float = HANDSHAKE_TIMEOUT_S,
    ) -> None:
        family, where = parse_address(address)
        if family == "AF_UNIX" and os.path.exists(address):
            os.unlink(address)
        # no authkey here: Listener.accept would run the handshake in the accept loop itself
        self._listener = Listener(where, family=family, backlog=64)
        if family == "AF_INET":
            host, port = self._listener.address
            self.address = f"{TCP_SCHEME}{host}:{port}"
        else:
            self.address = address
        self._authkey = authkey
        self._on_connect = on_connect
        self.handshake_timeout = handshake_timeout
        self._closed = False
        self._slots = threading.BoundedSemaphore(self.MAX_HANDSHAKES)
        self._count_lock = threading.Lock()
        self.failed_handshakes = 0
        self._thread = threading.Thread(target=self._run, name="accept", daemon=True)
        self._thread.start()

    def _failed(self) -> None:
        with self._count_lock:
            self.failed_handshakes += 1

    def _run(self) -> None:
        while not self._closed:
            try:
                conn = self._listener.accept()
            except OSError:
                if self._closed:
                    return
                self._failed()  # a client that hung up before it was accepted
                continue
            if not self._slots.acquire(blocking=False):  # a flood of silent clients
                self._failed()
                conn.close()
                continue
            threading.Thread(
                target=self._handshake, args=(conn,), name="handshake", daemon=True
            ).start()

    def _handshake(self, conn: Connection) -> None:
        try:
            _set_timeout(conn, self.handshake_timeout)
            # the order of Listener.accept: challenge the client, then answer its challenge
            deliver_challenge(conn, self._authkey)
            answer_challenge(conn, self._authkey)
            _set_timeout(conn, 0.0)  # an authenticated link waits as long as it needs
        except Exception:  # wrong key (AuthenticationError), silence past the deadline, EOF
            self._failed()
            conn.close()
            return
        finally:
            self._slots.release()
        if self._closed:
            conn.close()
            return
        self._on_connect(conn)

    def close(self) -> None:
        self._closed = True
        try:
            self._listener.close()
        except OSError:
            pass


class RoleLink:
    """A role's status link to the launcher: metrics and events up, commands down."""

    def __init__(self, conn: Connection, role: str, index: int = 0) -> None:
        self._conn = conn
        self.role = role
        self.index = index
        self._lock = threading.Lock()  # roles report from several threads

    @classmethod
    def dial(cls, address: str, authkey: bytes, role: str, index: int = 0) -> RoleLink:
        link = cls(connect(address, authkey), role, index)
        link.send("hello", pid=os.getpid())
        return link

    def send(self, kind: str, **meta: Any) -> None:
        """Report an event or metrics (small msgpack map)."""
        payload = encode(kind, None, {"role": self.role, "index": self.index, **meta})
        with self._lock:
            try:
                self._conn.send_bytes(payload)
            except OSError as exc:
                raise TransportError(f"launcher link lost: {exc}") from exc

    def poll_command(self, timeout: float = 0.0) -> str | None:
        """The next command from the launcher, if any arrived within ``timeout``."""
        try:
            if not self._conn.poll(timeout):
                return None
            message = decode(self._conn.recv_bytes(), kinds={"command"})
        except (EOFError, OSError):
            return CMD_STOP  # launcher gone: stop cleanly
        except CodecError:
            return None
        return str(message.meta.get("command"))

    def close(self) -> None:
        self._conn.close()


def send_command(conn: Connection, command: str) -> None:
    """Launcher side: send a command down a status link (ignored if the role is gone)."""
    try:
        conn.send_bytes(encode("command", None, {"command": command}))
    except OSError:
        pass
