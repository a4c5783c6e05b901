"""How local roles find each other: authenticated Unix-socket connections, bytes only.

The launcher listens for *status* links (metrics up, commands down); the learner listens for
*experience* links from actors. Connections use ``multiprocessing.connection`` with an authkey
(HMAC challenge) and only ``send_bytes``/``recv_bytes``, so nothing is ever unpickled. Because
actors dial in, a restarted or newly started actor simply connects again.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

from rlfleet.errors import CodecError, TransportError
from rlfleet.transport.codec import decode, encode
from rlfleet.transport.ports import CMD_STOP


def connect(address: str, authkey: bytes, timeout: float = 60.0) -> Connection:
    """Dial a listener, retrying while it is not up yet (roles start in any order)."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        try:
            return Client(address, family="AF_UNIX", authkey=authkey)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            if time.monotonic() > deadline:
                raise TransportError(f"nobody listens on {address} after {timeout:.0f} s") from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


class AcceptLoop:
    """Accepts connections on a Unix socket in a daemon thread and hands them to ``on_connect``."""

    def __init__(
        self, address: str, authkey: bytes, on_connect: Callable[[Connection], None]
    ) -> None:
        if os.path.exists(address):
            os.unlink(address)
        self._listener = Listener(address, family="AF_UNIX", authkey=authkey, backlog=64)
        self._on_connect = on_connect
        self._closed = False
        self.failed_handshakes = 0
        self._thread = threading.Thread(target=self._run, name="accept", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            try:
                conn = self._listener.accept()
            except OSError:
                if self._closed:
                    return
                self.failed_handshakes += 1  # wrong authkey or a client that hung up
                continue
            except Exception:  # AuthenticationError and friends: count, keep serving
                self.failed_handshakes += 1
                continue
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
