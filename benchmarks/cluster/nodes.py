"""A two-node Ray cluster on this machine: ``ray start --head`` plus a second ``ray start
--address``, each with its own ``--num-cpus``, free ports, a temp dir, and a token of its own
(Ray's token authentication). Both are started with ``--block`` in sessions of their own, so
stopping them (SIGTERM to each ``ray start``, then SIGKILL to its process group) ends every
process they started and nothing else. Used by ``rlfleet bench cluster`` and the ``--ray`` e2e
test.

Ray 2.60 refuses loopback: it rewrites 127.0.0.1 to the host's own interface address
(``resolve_ip_for_localhost``), so the cluster listens on that address -- still this machine.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port free on this host right now."""
    with socket.socket() as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


class TwoNodeCluster:
    """Start with :meth:`start`, stop with :meth:`stop`; ``address`` is the head's GCS address
    and ``env`` the environment (token) a driver needs to join."""

    def __init__(self, head_cpus: int = 2, worker_cpus: int = 2) -> None:
        import tempfile

        import ray._private.services as services  # the address Ray will use for this host

        # short: Ray's Unix sockets live under it (107 bytes at most)
        self.tmp = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
        self.ip = services.get_node_ip_address()
        self.port = free_port()
        self.address = f"{self.ip}:{self.port}"
        self.env = dict(
            os.environ,
            RAY_USAGE_STATS_ENABLED="0",
            RAY_AUTH_MODE="token",
            RAY_AUTH_TOKEN=secrets.token_hex(16),
        )
        self.cpus = (head_cpus, worker_cpus)
        self.procs: list[subprocess.Popen] = []

    def _node(self, name: str, cpus: int, extra: list[str]) -> None:
        ports = [free_port() for _ in range(6)]
        args = [shutil.which("ray") or "ray", "start", "--block", f"--num-cpus={cpus}"]
        args += [f"--node-manager-port={ports[0]}", f"--object-manager-port={ports[1]}"]
        args += [f"--metrics-export-port={ports[2]}", f"--runtime-env-agent-port={ports[3]}"]
        args += [f"--dashboard-agent-listen-port={ports[4]}"]
        args += [f"--dashboard-agent-grpc-port={ports[5]}", "--object-store-memory=80000000"]
        log = open(self.tmp / f"{name}.log", "w")
        self.procs.append(
            subprocess.Popen(
                args + extra,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def start(self, timeout: float = 180.0) -> None:
        self._node(
            "head",
            self.cpus[0],
            [
                "--head",
                f"--port={self.port}",
                f"--temp-dir={self.tmp}",
                "--include-dashboard=false",
            ],
        )
        self._wait(lambda: self._health(), timeout, "the head node")
        self._node("worker", self.cpus[1], [f"--address={self.address}"])
        worker_log = self.tmp / "worker.log"
        self._wait(
            lambda: "Ray runtime started" in worker_log.read_text(), timeout, "the worker node"
        )

    def _health(self) -> bool:
        done = subprocess.run(
            ["ray", "health-check", f"--address={self.address}"],
            env=self.env,
            capture_output=True,
            timeout=60,
        )
        return done.returncode == 0

    def _wait(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if any(p.poll() is not None for p in self.procs):
                logs = "".join(f.read_text()[-1500:] for f in sorted(self.tmp.glob("*.log")))
                raise RuntimeError(f"{what} exited:\n{logs}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not up after {timeout:g} s; see {self.tmp}/*.log")
            time.sleep(0.5)  # another process is starting: nothing to block on

    def pgids(self) -> list[int]:
        return [p.pid for p in self.procs]  # each `ray start` leads its own session

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # whatever the node left in its session
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)
