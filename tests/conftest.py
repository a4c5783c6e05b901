"""Shared test setup.

* Marks every test by the folder it lives in: tests/unit, tests/integration, tests/e2e; tests
  marked ``soak`` run only when the ``-m`` expression names them (``-m soak``).
* ``one_torch_thread``: torch intra-op threads set to 1 for a test and restored after (tests of
  tiny tensors that share this 2-core machine with measurements); modules opt in with
  ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
* ``redis_server`` / ``tls_redis_server``: a real, throw-away ``redis-server`` per test (free
  loopback port, password, no persistence), for the integration and end-to-end tests. Skips (with
  the reason) only when the ``redis-server`` binary is missing; CI installs the Debian package,
  so CI never skips.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# the checkout's root (tests of benchmarks/, outside the package, import it by name) and this
# folder (shared fakes: ``from fakes import FakeLink``); importlib mode adds neither
sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.parts
        for marker in ("unit", "integration", "e2e"):
            if marker in parts:
                item.add_marker(getattr(pytest.mark, marker))
    # soak tests run only when a -m expression names them (`-m e2e` alone would pick them up)
    if "soak" not in (config.getoption("markexpr") or ""):
        soak = [item for item in items if item.get_closest_marker("soak") is not None]
        if soak:
            config.hook.pytest_deselected(items=soak)
            items[:] = [item for item in items if item.get_closest_marker("soak") is None]


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    import torch  # only the modules that use it pay for the import

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


PASSWORD = "s3cret-test-pw"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process that a test can kill and start again on the same port."""

    def __init__(self, binary: str, workdir: Path, tls_cert: Path | None = None) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = _free_port()
        self.password = PASSWORD
        self.tls_cert = tls_cert  # self-signed cert (also the CA); key next to it as key.pem
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.url_with(self.password)

    def url_with(self, password: str) -> str:
        scheme = "rediss" if self.tls_cert else "redis"
        return f"{scheme}://:{password}@127.0.0.1:{self.port}/0"

    def _listen_args(self) -> list[str]:
        if self.tls_cert is None:
            return ["--port", str(self.port)]
        cert, key = str(self.tls_cert), str(self.tls_cert.with_name("key.pem"))
        return ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", cert] + [
            "--tls-key-file",
            key,
            "--tls-ca-cert-file",
            cert,
            "--tls-auth-clients",
            "no",
        ]

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=0.5)
        if self.tls_cert is None:
            return sock
        context = ssl.create_default_context(cafile=str(self.tls_cert))
        return context.wrap_socket(sock, server_hostname="127.0.0.1")

    def start(self, timeout: float = 10.0) -> None:
        args = [
            self.binary,
            *self._listen_args(),
            "--bind",
            "127.0.0.1",
            "--protected-mode",
            "yes",
            "--requirepass",
            self.password,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            "--logfile",
            str(self.workdir / "redis.log"),
            "--daemonize",
            "no",
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}:\n{log}")
            try:
                with self._connect() as sock:
                    sock.sendall(f"AUTH {self.password}\r\nPING\r\n".encode())
                    reply = b""
                    while b"PONG" not in reply and len(reply) < 100:
                        chunk = sock.recv(100)
                        if not chunk:
                            break
                        reply += chunk
                    if b"PONG" in reply:
                        return
            except OSError:
                pass
            time.sleep(0.02)  # startup wait in a fixture, not a role loop
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout} s")

    def kill(self) -> None:
        """SIGKILL: a crash, not a clean shutdown (and no data survives: no persistence)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A started, password-protected redis-server on a free 127.0.0.1 port; stopped afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server binary not found (apt-get install redis-server); CI installs it")
    server = RedisServer(binary, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tls_redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """Like ``redis_server`` but TLS-only (``rediss://``) with a fresh self-signed certificate."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server binary not found (apt-get install redis-server); CI installs it")
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl binary not found: needed to make a test certificate")
    cert = tmp_path / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(tmp_path / "key.pem"), "-out", str(cert), "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    server = RedisServer(binary, tmp_path, tls_cert=cert)
    server.start()
    try:
        yield server
    finally:
        server.stop()
