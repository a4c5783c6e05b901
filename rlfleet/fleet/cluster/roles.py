"""What runs inside a Ray actor: one role's existing entry point, on the worker's main thread.

The role's arguments travel as one JSON string (plain strings and numbers, the
:class:`~rlfleet.fleet.addresses.FleetAddresses` as a map), so nothing of the run crosses Ray
but a string; experience and parameters go through Redis as with ``rlfleet actor``. This module
does not import Ray: :func:`rlfleet.fleet.cluster.ray.remote_class` wraps the classes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import Any

from rlfleet.errors import ConfigError, RlfleetError
from rlfleet.fleet import bootstrap
from rlfleet.fleet.addresses import FleetAddresses

#: Role kind of each entry point (the placement is handed the entry point itself).
KIND_OF: dict[Callable[..., None], str] = {
    main: kind for kind, main in bootstrap.ROLE_MAINS.items()
}


def encode_args(args: tuple) -> str:
    """A role's arguments as JSON (the addresses as a tagged map)."""
    out = []
    for value in args:
        if isinstance(value, FleetAddresses):
            out.append({"fleet_addresses": dataclasses.asdict(value)})
        elif isinstance(value, (str, int, float)) or value is None:
            out.append(value)
        else:
            raise TypeError(f"role argument of type {type(value).__name__} cannot travel as JSON")
    return json.dumps(out)


def decode_args(text: str) -> tuple:
    """The inverse of :func:`encode_args`."""
    out: list[Any] = []
    for value in json.loads(text):
        if isinstance(value, dict):
            out.append(FleetAddresses(**value["fleet_addresses"]))
        else:
            out.append(value)
    return tuple(out)


class RoleActor:
    """A Ray actor that runs one role: ``run(kind, args_json)`` calls the role's entry point and
    returns when the role ends (an exception is the role's error, reported on its status link
    by the role itself first). The call runs on the worker's main thread, so the role sets its
    own thread counts and signal handling as in a process of the local fleet."""

    def where(self) -> dict[str, Any]:
        """The node this actor runs on (for placement checks and tests)."""
        import ray

        return {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}

    def warm(self, modules: list[str]) -> float:
        """Import ``modules`` (what the local fleet's forkserver preloads: torch, the shells,
        the agents' modules) before the role is started, so a new Ray worker's imports overlap
        with the driver's own set-up instead of delaying the role; returns the seconds taken."""
        import importlib

        t0 = time.perf_counter()
        for name in modules:
            importlib.import_module(name)
        return time.perf_counter() - t0

    def start_redis(self) -> str:
        """Start the run's redis-server next to this role (the learner's node, on the address
        Ray knows it by); see :meth:`start_redis_on`."""
        return self.start_redis_on("")

    def start_redis_on(self, host: str) -> str:
        """Start the run's redis-server bound to ``host`` (empty: this node's Ray address),
        stopped with :meth:`stop_redis` or with this actor's worker; returns its URL (see
        :class:`RedisNode`). Hosting it in a role's actor spares the cluster one more Ray
        worker at the run's start."""
        self._redis = RedisNode()
        return self._redis.start(host)

    def stop_redis(self) -> bool:
        """Stop the redis-server :meth:`start_redis` started (if any)."""
        redis = getattr(self, "_redis", None)
        return redis.stop() if redis is not None else False

    def run(self, kind: str, args_json: str) -> int:
        target = bootstrap.ROLE_MAINS[kind]
        target(*decode_args(args_json))
        return 0


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the actor's worker process dies (Linux), so a killed
    worker never leaves its redis-server behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class RedisNode:
    """A Ray actor that runs the run's redis-server on its node: bound to that node's address,
    a generated password (in a 0600 config file, never on a command line), no persistence, and
    stopped with the actor (and with the worker process, if that is killed)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.tmp = ""

    def start(self, host: str = "", startup_s: float = 20.0) -> str:
        """Start redis-server; returns its URL (with the password: the caller keeps it out of
        config and logs)."""
        import ray

        binary = shutil.which("redis-server")
        if binary is None:
            raise ConfigError(
                "no redis-server on the learner's node: install it there (apt-get install "
                "redis-server) or pass --redis URL of a server the cluster can reach"
            )
        host = host or ray.util.get_node_ip_address()
        password = secrets.token_urlsafe(24)
        self.tmp = tempfile.mkdtemp(prefix="rlfleet-redis-")
        for _ in range(3):  # a port picked here may be taken before redis binds it: retry
            port = _free_port(host)
            conf = os.path.join(self.tmp, "redis.conf")
            fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(
                    f'bind {host}\nport {port}\nrequirepass {password}\nsave ""\n'
                    f'appendonly no\ndir {self.tmp}\nprotected-mode yes\nlogfile ""\n'
                )
            self.proc = subprocess.Popen(
                [binary, conf],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
            if _wait_for_port(host, port, self.proc, startup_s):
                os.remove(conf)  # read at start only: no password left on disk if we are killed
                return f"redis://:{password}@{host}:{port}/0"
            self.stop()
        raise RlfleetError(f"redis-server did not start on {host} (tried three free ports)")

    def stop(self) -> bool:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return True


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _wait_for_port(host: str, port: int, proc: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)  # the server is starting: nothing to block on
    return False
