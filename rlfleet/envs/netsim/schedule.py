"""Delivery-opportunity schedules with mahimahi's semantics.

A schedule is an infinite, non-decreasing sequence of integer-millisecond timestamps; at each
one, one opportunity of :data:`OPPORTUNITY_BYTES` (1504 B) may be used by the link. Opportunities
are indexed ``k = 0, 1, 2, ...`` and every schedule answers two questions in O(1) / O(log n):

* ``time(k)``: the millisecond of opportunity ``k``;
* ``first_after(t)``: the index of the first opportunity strictly later than integer ms ``t``
  (equivalently, the number of opportunities at times ``<= t``).

Rates are labelled as Pantheon labels its traces: ``R`` Mbit/s means ``R / 12`` opportunities per
millisecond (1500-byte packets), so ``12`` Mbit/s is one opportunity per ms and a byte rate of
1504 B/ms.
"""

from __future__ import annotations

import bisect
import math
from pathlib import Path

import numpy as np

from rlfleet.errors import ConfigError

OPPORTUNITY_BYTES = 1504
#: Bits per opportunity used for rate labels (Pantheon's convention, 1500-byte packets).
_LABEL_BITS = 1500 * 8


class Schedule:
    """Base class: an infinite sequence of delivery opportunities at integer ms."""

    __slots__ = ()

    #: Mean opportunities per millisecond (over one period).
    opportunities_per_ms: float

    def time(self, k: int) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def first_after(self, t: int) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def count_between(self, t0: float, t1: float) -> int:
        """Opportunities with ``t0 < time <= t1`` (ms; fractional bounds are floored)."""
        return self.first_after(int(math.floor(t1))) - self.first_after(int(math.floor(t0)))

    @property
    def mean_mbps(self) -> float:
        """Mean byte capacity in Mbit/s (1504 B per opportunity)."""
        return self.opportunities_per_ms * OPPORTUNITY_BYTES * 8 / 1000.0


class ConstantSchedule(Schedule):
    """Evenly interleaved constant-rate opportunities (``rate_mbps / 12`` per ms).

    Opportunity ``k`` is at ms ``ceil((k + 1) / r)``: the first ``floor(t * r)`` opportunities
    fall at or before ms ``t``. Exact integer arithmetic, so no drift over long runs.
    """

    __slots__ = ("_num", "_den", "opportunities_per_ms", "rate_mbps")

    def __init__(self, rate_mbps: float) -> None:
        if not (rate_mbps > 0 and math.isfinite(rate_mbps)):
            raise ConfigError(f"constant schedule rate {rate_mbps!r} Mbit/s must be > 0 and finite")
        # opportunities per ms = rate_bps / (12000 * 1000); keep it as an exact fraction num/den
        # with the rate rounded to 1 bit/s.
        num, den = int(round(rate_mbps * 1e6)), _LABEL_BITS * 1000
        # in lowest terms: the same floors, and the compiled engine's products stay small enough
        # for the CPU's 32-bit division (100.42 Mbit/s: 5021/600, not 100420000/12000000)
        g = math.gcd(num, den)
        self._num = num // g
        self._den = den // g
        self.opportunities_per_ms = self._num / self._den
        self.rate_mbps = float(rate_mbps)

    def time(self, k: int) -> int:
        return ((k + 1) * self._den + self._num - 1) // self._num

    def first_after(self, t: int) -> int:
        return t * self._num // self._den if t > 0 else 0


class TableSchedule(Schedule):
    """A looping table of timestamps, exactly as mahimahi reads a trace file.

    ``times`` are non-decreasing integer ms; the table repeats with period = the last timestamp.
    """

    __slots__ = ("_times", "_n", "_period", "opportunities_per_ms")

    def __init__(self, times: list[int] | np.ndarray) -> None:
        ts = [int(x) for x in times]
        if not ts:
            raise ConfigError("a trace needs at least one timestamp; got an empty list")
        if ts[0] < 0 or any(b < a for a, b in zip(ts, ts[1:], strict=False)):
            raise ConfigError("trace timestamps must be non-negative and non-decreasing (ms)")
        if ts[-1] <= 0:
            raise ConfigError(f"trace period (last timestamp) must be > 0 ms, got {ts[-1]}")
        self._times = ts
        self._n = len(ts)
        self._period = ts[-1]
        self.opportunities_per_ms = self._n / self._period

    @property
    def period_ms(self) -> int:
        return self._period

    def time(self, k: int) -> int:
        q, r = divmod(k, self._n)
        return self._times[r] + q * self._period

    def first_after(self, t: int) -> int:
        if t < 0:
            return 0
        q, r = divmod(t, self._period)
        return q * self._n + bisect.bisect_right(self._times, r)


def poisson_times(
    rate_mbps: float, *, duration_ms: int = 60_000, warmup_ms: int = 0, seed: int = 0
) -> list[int]:
    """Timestamps of a Pantheon-style Poisson trace.

    The first ``warmup_ms`` carry one opportunity every 100 ms (as Pantheon's cellular traces do);
    afterwards inter-arrival times are exponential with mean ``12 / rate_mbps`` ms, rounded up to
    integer ms (several opportunities may share a millisecond). The trace lasts ``duration_ms`` and
    loops with that period.
    """
    if not (rate_mbps > 0 and math.isfinite(rate_mbps)):
        raise ConfigError(f"poisson rate {rate_mbps!r} Mbit/s must be > 0 and finite")
    if warmup_ms < 0 or duration_ms <= warmup_ms:
        raise ConfigError(
            f"need 0 <= warmup_ms < duration_ms, got warmup_ms={warmup_ms}, duration_ms={duration_ms}"
        )
    warm = list(range(100, warmup_ms + 1, 100))
    lam = rate_mbps * 1e6 / _LABEL_BITS / 1000.0  # opportunities per ms
    rng = np.random.default_rng(seed)
    n_draw = int((duration_ms - warmup_ms) * lam * 1.2) + 64
    arrivals = warmup_ms + np.cumsum(rng.exponential(1.0 / lam, size=n_draw))
    while arrivals[-1] < duration_ms:  # extremely unlikely: draw more
        more = arrivals[-1] + np.cumsum(rng.exponential(1.0 / lam, size=n_draw))
        arrivals = np.concatenate([arrivals, more])
    ts = np.ceil(arrivals[arrivals <= duration_ms]).astype(np.int64)
    ts = np.maximum(ts, 1)
    out = warm + ts.tolist()
    if not out or out[-1] != duration_ms:
        out.append(duration_ms)  # pins the loop period to the trace duration
    return out


def read_trace(path: str | Path) -> list[int]:
    """Read a mahimahi trace file: one integer ms timestamp per line (blank lines ignored)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read mahimahi trace {str(p)!r}: {exc}") from exc
    out: list[int] = []
    for i, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s:
            continue
        try:
            out.append(int(s))
        except ValueError:
            raise ConfigError(
                f"{str(p)!r} line {i}: {s!r} is not an integer ms timestamp "
                "(a mahimahi trace has one integer per line)"
            ) from None
    TableSchedule(out)  # validates
    return out


def scale_times(times: list[int], factor: float) -> list[int]:
    """Stretch a table so its rate is multiplied by ``factor`` (timestamps divided by it)."""
    if not factor > 0:
        raise ConfigError(f"trace scale factor must be > 0, got {factor!r}")
    arr = np.maximum(np.round(np.asarray(times, dtype=np.float64) / factor), 0).astype(np.int64)
    if arr[-1] <= 0:
        arr[-1] = 1
    return arr.tolist()
