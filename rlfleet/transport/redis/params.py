"""Versioned parameters over Redis: the learner publishes, actors download only on change.

Two keys per run, written together in one ``MULTI``/``EXEC`` transaction:

* ``rlfleet:{run}:params:version`` -- the version as a decimal integer (a few bytes to read);
* ``rlfleet:{run}:params:data`` -- one codec message ``kind="params"`` holding the float32
  vector ``flat`` and ``meta.version``.

Readers check the small version key and ``GET`` the data only when it is newer than what they
have. The version inside the data message is the one reported, so a publish landing between the
two reads is harmless (the reader just gets the even newer vector). The data is read by a
:class:`~rlfleet.transport.redis.bulk.BulkReader` straight into a reusable buffer, decoded in
place (the codec returns views) and copied once into the caller's vector.
"""

from __future__ import annotations

import time

import numpy as np
import redis

from rlfleet.errors import CodecError, TransportError
from rlfleet.transport.codec import Message, decode, encode
from rlfleet.transport.redis.bulk import BulkReader
from rlfleet.transport.redis.claim import LIVE, claim_key
from rlfleet.transport.redis.connection import RETRYABLE, describe, raise_if_fatal
from rlfleet.transport.redis.keys import key
from rlfleet.transport.retry import Backoff

#: Seconds between two looks at the run's claim by a publisher with an ``owner``.
FENCE_CHECK_S = 0.5


class RedisParams:
    """``publish(flat, version)`` for the learner, ``fetch_if_newer(version, out)`` for actors.

    Neither raises on an outage: a failed publish is counted in ``errors`` (the next publish
    carries newer weights anyway), a failed fetch returns ``None`` so the actor keeps acting on
    the weights it has. Retries are spaced by ``backoff``. A stored vector that does not decode
    is counted in ``rejected`` (so is a data key of the wrong type or larger than ``max_bytes``,
    refused before it is downloaded); one that decodes but does not fit ``out`` is a
    configuration mismatch between learner and actor and raises :class:`TransportError`.
    Counters: ``published``, ``downloads``, ``bytes_downloaded``, ``errors``, ``rejected``,
    ``fenced``. With ``owner`` (the learner host's claim token), a publication is skipped
    (``fenced``) while the run's claim is another host's: a learner whose host lost the name
    never overwrites the new holder's parameters (checked every ``FENCE_CHECK_S`` seconds).
    Downloads use a connection of their own (see :mod:`~rlfleet.transport.redis.bulk`);
    :meth:`close` releases it.
    """

    def __init__(
        self,
        client: redis.Redis,
        run: str,
        max_bytes: int = 1 << 31,
        compress: str = "raw",
        backoff: Backoff | None = None,
        owner: str = "",
    ) -> None:
        self._client = client
        self._owner = f"{LIVE}{owner}".encode() if owner else b""
        self._claim_key = claim_key(run)
        self._owner_checked = float("-inf")
        self._taken = False
        self._where = describe(client)
        self.version_key = key(run, "params", "version")
        self.data_key = key(run, "params", "data")
        self._max_bytes = max_bytes
        self._compress = compress
        self._backoff = backoff or Backoff()
        self._reader: BulkReader | None = None  # made on the first download (actors only)
        self.published = self.downloads = self.bytes_downloaded = 0
        self.errors = self.rejected = self.fenced = 0
        self.last_error = ""

    def publish(self, flat: np.ndarray, version: int) -> None:
        """Store ``flat`` (1-D float32) as ``version``; on an outage count it in ``errors``."""
        if flat.ndim != 1 or flat.dtype != np.float32:
            raise TransportError(
                f"parameter vector is {flat.dtype.name}{list(flat.shape)}, expected 1-D float32"
            )
        if not self._backoff.ready():  # reconnect not due yet: skip, the next publish is newer
            self.errors += 1
            return
        payload = encode("params", {"flat": flat}, {"version": int(version)}, self._compress)
        pipe = self._client.pipeline(transaction=True)
        pipe.set(self.data_key, payload)
        pipe.set(self.version_key, int(version))
        try:
            if self._claim_taken():
                self.fenced += 1
                return
            pipe.execute()
        except RETRYABLE as exc:
            self._failed(exc)
            return
        self._backoff.succeeded()
        self.published += 1

    def _claim_taken(self) -> bool:
        """Whether another learner host holds the run's claim (looked up at most every
        ``FENCE_CHECK_S`` seconds; never without an ``owner``)."""
        now = time.monotonic()
        if not self._owner or now - self._owner_checked < FENCE_CHECK_S:
            return self._taken
        raw = self._client.get(self._claim_key)
        self._owner_checked = now
        self._taken = raw is not None and raw.startswith(LIVE.encode()) and raw != self._owner
        return self._taken

    def latest_version(self) -> int | None:
        """The published version (0 before the first publish), or None if unreachable."""
        if not self._backoff.ready():
            return None
        try:
            raw = self._client.get(self.version_key)
        except RETRYABLE as exc:
            self._failed(exc)
            return None
        self._backoff.succeeded()
        try:
            return int(raw) if raw is not None else 0
        except ValueError:
            self.rejected += 1
            self.last_error = f"version key holds {raw[:32]!r}, not an integer"
            return None

    def fetch_if_newer(self, have_version: int, out: np.ndarray) -> int | None:
        """Copy the vector into ``out`` if a version newer than ``have_version`` is published.

        Reads only the version key unless there is something newer. Returns the copied version,
        or ``None`` (nothing newer, unreachable, or a stored vector that failed validation).
        """
        version = self.latest_version()
        if version is None or version <= have_version:
            return None
        if self._reader is None:
            self._reader = BulkReader(self._client)
        try:
            data = self._reader.get(self.data_key, self._max_bytes)
        except RETRYABLE as exc:
            self._failed(exc)
            return None
        except (CodecError, redis.ResponseError) as exc:  # oversized, or not a string key
            raise_if_fatal(exc, self._where)  # but missing permissions are no bad data
            self.rejected += 1
            self.last_error = f"parameter data: {exc}"
            return None
        if data is None:  # version without data: someone deleted the run's keys meanwhile
            return None
        self.downloads += 1
        self.bytes_downloaded += len(data)
        try:
            message = decode(data, self._max_bytes, {"params"})
            got = self._check(message, out)
        except CodecError as exc:
            self.rejected += 1
            self.last_error = str(exc)
            return None
        if got <= have_version:
            return None
        np.copyto(out, message.arrays["flat"])  # the views point into the reader's buffer
        return got

    def close(self) -> None:
        """Close the download connection (the shared client stays open)."""
        if self._reader is not None:
            self._reader.close()

    def _check(self, message: Message, out: np.ndarray) -> int:
        flat = message.arrays.get("flat")
        got = message.meta.get("version")
        if flat is None or not isinstance(got, int) or isinstance(got, bool):
            raise CodecError("params message needs an array 'flat' and an integer meta.version")
        if flat.dtype != out.dtype or flat.shape != out.shape:
            raise TransportError(
                f"published parameters are {flat.dtype.name}{list(flat.shape)} but this role "
                f"expects {out.dtype.name}{list(out.shape)}: learner and actor were built from "
                "different configs (network, environment or preset)"
            )
        return got

    def _failed(self, exc: BaseException) -> None:
        raise_if_fatal(exc, self._where)
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        self._backoff.failed()
