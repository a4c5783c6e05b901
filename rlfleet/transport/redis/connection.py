"""Connecting to Redis: URLs, pools, timeouts, and telling transient failures from fatal ones.

One :func:`connect` call gives a ``redis.Redis`` client backed by a connection pool (safe to share
between threads). redis-py picks the hiredis parser by itself when the ``hiredis`` package is
installed. Its own retry loop is switched off: the transport classes own reconnecting, through
:class:`~rlfleet.transport.retry.Backoff`, so there is one schedule and one place that counts
failures.

Transient: connection refused/reset, timeouts, a server still loading its data set. Fatal: wrong
password or missing permissions -- retrying cannot fix those, so they become a
:class:`~rlfleet.errors.TransportError` at once, naming the server without the password.
"""

from __future__ import annotations

import re
import ssl
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.exceptions as rexc
from redis.backoff import NoBackoff
from redis.retry import Retry

from rlfleet.errors import ConfigError, TransportError
from rlfleet.transport.retry import Backoff

SCHEMES = ("redis", "rediss")
#: Failures worth retrying after a pause (the server may come back).
RETRYABLE: tuple[type[BaseException], ...] = (rexc.ConnectionError, rexc.TimeoutError)
#: Failures no retry can fix (several of them subclass ConnectionError, so test these first).
FATAL: tuple[type[BaseException], ...] = (
    rexc.AuthenticationError,
    rexc.AuthorizationError,
    rexc.NoPermissionError,
)


_QUERY_PASSWORD = re.compile(r"(?i)(password=)[^&#]*")


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe for logs and error messages).

    Works on the text, never raises: a URL too malformed to parse (a bad port, one slash after
    the scheme) is redacted all the same. ``user:password@`` keeps the user; credentials
    without a colon, and anything before an ``@`` when there is no ``//HOST`` part, become
    ``***``; a ``password=`` query parameter too."""
    url = _QUERY_PASSWORD.sub(r"\1***", url)
    scheme, sep, rest = url.partition(":")
    if not sep or "@" not in rest:
        return url
    if rest.startswith("//"):
        end = min((i for i in map(rest.find, "/?#", (2, 2, 2)) if i >= 0), default=len(rest))
        netloc, tail = rest[2:end], rest[end:]
        if "@" not in netloc:
            return url  # an '@' in the path or query only
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0] + ":" if ":" in userinfo else ""
        return f"{scheme}://{user}***@{host}{tail}"
    return f"{scheme}:***@{rest.rpartition('@')[2]}"  # no //HOST: hide all before the host


def _check_url(url: str) -> None:
    """Refuse a URL redis-py would misread (no host, a bad port) with a message that shows it
    redacted; the scheme is checked by the caller."""
    form = "redis[s]://[USER]:PASSWORD@HOST:6379/0"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not 0-65535
    except ValueError as exc:
        detail = str(exc)
        for secret in re.findall(r"(?<=:)[^:@/]*(?=@)", url):
            detail = detail.replace(secret, "***") if secret else detail
        raise ConfigError(
            f"Redis URL {redact_url(url)!r} is malformed ({detail}); the form is {form}"
        ) from None
    if not parts.netloc or not parts.hostname:
        raise ConfigError(
            f"Redis URL {redact_url(url)!r} names no host; the form is {form} (two slashes "
            "after the scheme)"
        )


def describe(client: redis.Redis) -> str:
    """A password-free ``redis[s]://host:port/db`` for a client, for error messages."""
    kwargs = client.connection_pool.connection_kwargs
    scheme = "rediss" if client.connection_pool.connection_class is redis.SSLConnection else "redis"
    return f"{scheme}://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it wraps (redis-py hides TLS errors inside ConnectionError)."""
    seen: list[BaseException] = []
    while exc is not None and exc not in seen and len(seen) < 10:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return seen


def raise_if_fatal(exc: BaseException, where: str) -> None:
    """Turn an authentication, permission or TLS-trust failure into a :class:`TransportError`
    (retrying cannot fix those); return for anything else."""
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in _chain(exc)):
        raise TransportError(
            f"the TLS certificate of Redis at {where} is not trusted ({exc}); pass the CA with "
            "ssl_ca_certs=PATH (or ?ssl_ca_certs=PATH in the rediss:// URL)"
        ) from exc
    if isinstance(exc, FATAL):
        raise TransportError(
            f"Redis at {where} refused this client ({type(exc).__name__}: {exc}); check the "
            "user name and password in the URL (redis://USER:PASSWORD@HOST:6379/0) and the "
            "server's requirepass / ACL settings"
        ) from exc


def _zero_copy_packer() -> Any:
    """redis-py's pure-Python command packer, or None where this redis-py cannot take one.

    With hiredis installed, redis-py packs every command with ``hiredis.pack_command``, which
    copies all arguments into one buffer: 3.6 ms of the 6.2 ms it took here to push one 2.8 MB
    frame batch. The Python packer hands arguments above 6000 bytes to ``sendall`` as they are
    (1.1 ms for the same push). Replies are still parsed by hiredis.
    """
    import inspect

    try:
        from redis._parsers.encoders import Encoder
        from redis.connection import AbstractConnection, PythonRespSerializer
    except ImportError:
        return None
    if "command_packer" not in inspect.signature(AbstractConnection.__init__).parameters:
        return None
    return PythonRespSerializer(6000, Encoder("utf-8", "strict", False).encode)


def connect(
    url: str,
    *,
    socket_timeout: float = 5.0,
    connect_timeout: float = 3.0,
    max_connections: int = 16,
    health_check_interval: float = 10.0,
    wait: float = 0.0,
    backoff: Backoff | None = None,
    check: bool = True,
    **client_kwargs: Any,
) -> redis.Redis:
    """A pooled client for ``redis://`` or ``rediss://`` (TLS) ``[USER[:PASSWORD]@]HOST:PORT/DB``.

    ``socket_timeout`` bounds every command (blocking pops use shorter waits than this);
    ``health_check_interval`` re-checks idle pooled connections so a restarted server is noticed
    before a command is lost on a dead socket. With ``check`` the server is pinged: a refused
    password raises :class:`TransportError` at once, an unreachable server is retried with
    ``backoff`` for up to ``wait`` seconds and then raises :class:`TransportError`.
    ``client_kwargs`` go to ``redis.Redis.from_url`` (e.g. ``ssl_ca_certs=`` for a private CA).
    """
    scheme = url.partition(":")[0] if ":" in url else ""
    if scheme not in SCHEMES:
        raise ConfigError(
            f"Redis URL {redact_url(url)!r} has scheme {scheme!r}; valid: "
            + ", ".join(f"{s}://" for s in SCHEMES)
        )
    _check_url(url)
    if socket_timeout <= 0 or connect_timeout <= 0:
        raise ConfigError(
            f"Redis timeouts must be > 0 seconds, got socket_timeout={socket_timeout!r}, "
            f"connect_timeout={connect_timeout!r}"
        )
    packer = _zero_copy_packer()
    if packer is not None:
        client_kwargs.setdefault("command_packer", packer)
    try:
        client = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            max_connections=max_connections,
            health_check_interval=health_check_interval,
            retry=Retry(NoBackoff(), 0),  # our Backoff owns retrying; no hidden second loop
            **client_kwargs,
        )
        # redis-py builds connections lazily: build one now (no I/O) so a misplaced option
        # (e.g. ssl_ca_certs on a plain redis:// URL) fails here, not at the first push
        pool = client.connection_pool
        pool.connection_class(**pool.connection_kwargs)
    except (ValueError, TypeError) as exc:  # the message may echo the URL: never the password
        detail = str(exc)
        password = urlsplit(url).password
        if password:
            detail = detail.replace(password, "***")
        raise ConfigError(
            f"bad Redis URL or option for {redact_url(url)!r}: {type(exc).__name__}: {detail}"
        ) from None
    if check:
        ping(client, redact_url(url), wait, backoff or Backoff())
    return client


def ping(client: redis.Redis, where: str, wait: float, backoff: Backoff) -> None:
    """Ping until it answers (up to ``wait`` seconds); fatal errors raise at once."""

    def once() -> None:
        try:
            client.ping()
        except RETRYABLE as exc:
            raise_if_fatal(exc, where)
            raise

    try:
        backoff.call(once, RETRYABLE, max_elapsed=wait)
    except RETRYABLE as exc:
        raise TransportError(
            f"Redis at {where} is unreachable after {wait:g} s: {type(exc).__name__}: {exc}"
        ) from exc


def blocking_limit(client: redis.Redis) -> float | None:
    """The longest server-side block (BLPOP) that still answers before the socket times out."""
    timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
    if timeout is None:
        return None
    return max(0.01, 0.8 * float(timeout))
