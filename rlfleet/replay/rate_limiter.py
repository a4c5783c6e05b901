"""Samples-per-insert rate limiter (the idea of Reverb's ``SampleToInsertRatio``).

Both sides are counted in ITEMS: inserting a batch of 64 transitions records 64 inserts, sampling a
batch of 512 records 512 samples. With a target ``samples_per_insert = s`` the limiter keeps

    diff = inserts * s - samples

inside the band ``[offset - error_buffer, offset + error_buffer]`` where
``offset = min_size_to_sample * s``. In words: on average every inserted item is sampled ``s``
times; the learner may run ahead of that by ``error_buffer`` samples and the actors may run ahead
by ``error_buffer / s`` items before the faster side is made to wait.

* Sampling is refused until ``min_size_to_sample`` items have been inserted.
* Inserting is always allowed while fewer than ``min_size_to_sample`` items were inserted, so
  filling the buffer can never deadlock.
* ``samples_per_insert=None`` means unlimited: only the minimum size gates sampling, inserts are
  never blocked.

Deadlock freedom: with sample batches of ``B`` items and insert batches of ``I`` items one of the
two sides can always proceed only if ``2 * error_buffer >= B + I * s``; :meth:`check_batch_sizes`
verifies that (see also :meth:`min_error_buffer`). A single request that can never fit the band
raises :class:`~rlfleet.errors.ConfigError` instead of blocking forever.

Thread-safe; the blocking waits use one :class:`threading.Condition` (no polling).
"""

from __future__ import annotations

import math
import numbers
import threading

from rlfleet.errors import ConfigError

__all__ = ["SamplesPerInsertLimiter"]


class SamplesPerInsertLimiter:
    """Keeps the ratio of sampled to inserted items near a target.

    Args:
        samples_per_insert: target average number of times each inserted item is sampled
            (> 0), or ``None`` for no limit.
        min_size_to_sample: items that must have been inserted before any sampling (>= 1).
        error_buffer: half-width of the tolerated band, in samples (> 0; ignored when
            ``samples_per_insert`` is None). Must be at least ``(B + I * s) / 2`` for sample
            batches of B items and insert batches of I items.
    """

    def __init__(
        self,
        samples_per_insert: float | None,
        min_size_to_sample: int = 1,
        error_buffer: float = 1.0,
    ) -> None:
        if samples_per_insert is not None:
            ok = isinstance(samples_per_insert, numbers.Real) and not isinstance(
                samples_per_insert, bool
            )
            if not ok or not math.isfinite(samples_per_insert) or samples_per_insert <= 0:
                raise ConfigError(
                    f"samples_per_insert must be a finite number > 0 or None (unlimited), "
                    f"got {samples_per_insert!r}"
                )
        if (
            not isinstance(min_size_to_sample, numbers.Integral)
            or isinstance(min_size_to_sample, bool)
            or min_size_to_sample < 1
        ):
            raise ConfigError(
                f"min_size_to_sample must be an integer >= 1, got {min_size_to_sample!r}"
            )
        if (
            not isinstance(error_buffer, numbers.Real)
            or isinstance(error_buffer, bool)
            or not math.isfinite(error_buffer)
            or error_buffer <= 0
        ):
            raise ConfigError(f"error_buffer must be a finite number > 0, got {error_buffer!r}")
        self.samples_per_insert = None if samples_per_insert is None else float(samples_per_insert)
        self.min_size_to_sample = int(min_size_to_sample)
        self.error_buffer = float(error_buffer)
        self._inserts = 0
        self._samples = 0
        self._closed = False
        self._cond = threading.Condition()

    # ----------------------------------------------------------------- config helpers
    @staticmethod
    def min_error_buffer(samples_per_insert: float, sample_batch: int, insert_batch: int) -> float:
        """Smallest ``error_buffer`` that cannot deadlock with these batch sizes."""
        return (sample_batch + insert_batch * samples_per_insert) / 2.0

    def check_batch_sizes(self, sample_batch: int, insert_batch: int) -> None:
        """Raise :class:`ConfigError` if these batch sizes could deadlock with this band."""
        if self.samples_per_insert is None:
            return
        need = self.min_error_buffer(self.samples_per_insert, sample_batch, insert_batch)
        if self.error_buffer < need:
            raise ConfigError(
                f"error_buffer={self.error_buffer:g} is too small for sample batches of "
                f"{sample_batch} and insert batches of {insert_batch} at samples_per_insert="
                f"{self.samples_per_insert:g}: it must be >= {need:g} "
                f"((sample_batch + insert_batch * samples_per_insert) / 2)"
            )

    # ----------------------------------------------------------------- counters
    @property
    def inserts(self) -> int:
        """Items inserted so far."""
        return self._inserts

    @property
    def samples(self) -> int:
        """Items sampled so far."""
        return self._samples

    @property
    def observed_samples_per_insert(self) -> float:
        """samples / inserts so far (0.0 before any insert): the `replay/samples_per_insert` metric."""
        return self._samples / self._inserts if self._inserts else 0.0

    def _count(self, name: str, n: int) -> int:
        # numbers.Integral so numpy integers (len of arrays, batch sizes from configs) pass.
        if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 0:
            raise ConfigError(f"{name} must be a non-negative integer item count, got {n!r}")
        return int(n)

    def record_insert(self, n: int) -> None:
        """Count ``n`` inserted items and wake waiting samplers."""
        n = self._count("insert count", n)
        with self._cond:
            self._inserts += n
            self._cond.notify_all()

    def record_sample(self, n: int) -> None:
        """Count ``n`` sampled items and wake waiting inserters."""
        n = self._count("sample count", n)
        with self._cond:
            self._samples += n
            self._cond.notify_all()

    # ----------------------------------------------------------------- decisions
    def _band(self) -> tuple[float, float]:
        assert self.samples_per_insert is not None
        offset = self.min_size_to_sample * self.samples_per_insert
        return offset - self.error_buffer, offset + self.error_buffer

    def _can_sample(self, n: int) -> bool:
        if self._inserts < self.min_size_to_sample:
            return False
        if self.samples_per_insert is None:
            return True
        low, _ = self._band()
        return self._inserts * self.samples_per_insert - (self._samples + n) >= low

    def _can_insert(self, n: int) -> bool:
        if self.samples_per_insert is None or self._inserts < self.min_size_to_sample:
            return True
        _, high = self._band()
        return (self._inserts + n) * self.samples_per_insert - self._samples <= high

    def _check_request(self, kind: str, n: int) -> int:
        n = self._count(f"{kind} count", n)
        if self.samples_per_insert is None:
            return n
        width = 2.0 * self.error_buffer
        cost = n if kind == "sample" else n * self.samples_per_insert
        if cost > width:
            raise ConfigError(
                f"a {kind} of {n} items can never fit the band of error_buffer="
                f"{self.error_buffer:g} at samples_per_insert={self.samples_per_insert:g}: "
                f"error_buffer must be >= {cost / 2:g}"
            )
        return n

    def can_sample(self, n: int) -> bool:
        """True if sampling ``n`` items now keeps the ratio within the band."""
        n = self._check_request("sample", n)
        with self._cond:
            return self._can_sample(n)

    def can_insert(self, n: int) -> bool:
        """True if inserting ``n`` items now keeps the ratio within the band."""
        n = self._check_request("insert", n)
        with self._cond:
            return self._can_insert(n)

    def wait_sample(self, n: int, timeout: float | None = None) -> bool:
        """Block until ``n`` items may be sampled; False on timeout or after :meth:`close`.

        Does not record the sample: call :meth:`record_sample` once it happened.
        """
        n = self._check_request("sample", n)
        with self._cond:
            self._cond.wait_for(lambda: self._closed or self._can_sample(n), timeout)
            return not self._closed and self._can_sample(n)

    def wait_insert(self, n: int, timeout: float | None = None) -> bool:
        """Block until ``n`` items may be inserted; False on timeout or after :meth:`close`.

        Does not record the insert: call :meth:`record_insert` once it happened.
        """
        n = self._check_request("insert", n)
        with self._cond:
            self._cond.wait_for(lambda: self._closed or self._can_insert(n), timeout)
            return not self._closed and self._can_insert(n)

    def close(self) -> None:
        """Wake every waiter and make all further waits return False at once (shutdown)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, int | float | None]:
        """Counters and config as plain Python numbers (JSON/npz friendly)."""
        with self._cond:
            return {
                "inserts": self._inserts,
                "samples": self._samples,
                "samples_per_insert": self.samples_per_insert,
                "min_size_to_sample": self.min_size_to_sample,
                "error_buffer": self.error_buffer,
            }

    def load_state_dict(self, state: dict) -> None:
        """Restore the counters from :meth:`state_dict`.

        Only ``inserts`` and ``samples`` are restored; the config of THIS limiter stays, so a
        resumed run may change the target ratio.
        """
        missing = [k for k in ("inserts", "samples") if k not in state]
        if missing:
            raise ConfigError(
                f"rate limiter state lacks {missing}; expected keys 'inserts' and 'samples', "
                f"got {sorted(state)}"
            )
        inserts = int(state["inserts"])
        samples = int(state["samples"])
        if inserts < 0 or samples < 0:
            raise ConfigError(
                f"rate limiter counters must be >= 0, got inserts={inserts}, samples={samples}"
            )
        with self._cond:
            self._inserts = inserts
            self._samples = samples
            self._cond.notify_all()
