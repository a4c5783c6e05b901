"""A throw-away ``redis-server`` on loopback for the benchmarks that need a real Redis
(``rlfleet bench transport``, ``rlfleet bench replay-service``)."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from rlfleet.errors import RlfleetError


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LoopbackRedis:
    """A throw-away ``redis-server`` on a free 127.0.0.1 port with a random password, protected
    mode on and no persistence; a context manager that stops it (and removes its folder)."""

    def __init__(self, binary: str | None = None) -> None:
        found = binary or shutil.which("redis-server")
        if not found or not Path(found).exists():
            raise RlfleetError(
                "redis-server not found: install it (Debian/Ubuntu: apt-get install "
                "redis-server) or pass --redis-server PATH"
            )
        self.binary = found
        self.port = _free_port()
        self.password = secrets.token_urlsafe(24)
        self.workdir = Path(tempfile.mkdtemp(prefix="rlfleet-bench-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def version(self) -> str:
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True).stdout
        return out.strip()

    def start(self, timeout: float = 15.0) -> None:
        """Start the server and wait until it answers an authenticated PING."""
        from rlfleet.transport.redis import connect

        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--protected-mode", "yes", "--requirepass", self.password, "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no"]
        args += ["--logfile", str(self.workdir / "redis.log")]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                log = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
                raise RlfleetError(f"redis-server exited with {self.proc.returncode}:\n{log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RlfleetError(
                        f"redis-server did not listen on port {self.port} within {timeout} s"
                    ) from None
                time.sleep(0.02)  # server start-up: nothing to block on
        connect(self.url, wait=max(1.0, deadline - time.monotonic())).close()

    def stop(self) -> None:
        """Terminate the server (kill after 10 s) and delete its folder."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LoopbackRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
