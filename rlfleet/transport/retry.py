"""Exponential backoff with jitter: the one object that decides when to try a remote again.

Transports use it in two ways:

* **gating** (non-blocking): after a failure, :meth:`Backoff.ready` stays false until the delay
  has passed, so a hot loop (an actor pushing every few milliseconds) does not hammer a server
  that is down, and does not block on a reconnect attempt every call either;
* **calling** (blocking): :meth:`Backoff.call` retries a function on the given exceptions,
  sleeping between attempts, until it succeeds or a deadline passes.

Jitter spreads the reconnects of many actors after a server restart, so they do not all arrive
in the same millisecond. Nothing here knows about Redis; the caller names what is retryable.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from rlfleet.errors import ConfigError

T = TypeVar("T")


class Backoff:
    """Delay ``min(cap, base * factor**(failures - 1))``, shortened by up to ``jitter`` of itself.

    ``jitter=0.5`` gives delays uniformly in ``[d/2, d]``: never zero (a thundering herd would
    retry at once) and never longer than the un-jittered schedule.
    """

    def __init__(
        self,
        base: float = 0.05,
        cap: float = 5.0,
        factor: float = 2.0,
        jitter: float = 0.5,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not base > 0:
            raise ConfigError(f"backoff base must be > 0 seconds, got {base!r}")
        if not cap >= base:
            raise ConfigError(f"backoff cap must be >= base ({base}), got {cap!r}")
        if not factor >= 1:
            raise ConfigError(f"backoff factor must be >= 1, got {factor!r}")
        if not 0 <= jitter <= 1:
            raise ConfigError(f"backoff jitter must be in [0, 1], got {jitter!r}")
        self.base, self.cap, self.factor, self.jitter = base, cap, factor, jitter
        self._rng = rng or random.Random()
        self._clock = clock
        self.failures = 0  # consecutive failures since the last success
        self._next_at = 0.0

    def delay(self) -> float:
        """The (jittered) wait that follows the current run of failures; 0 after a success."""
        if self.failures == 0:
            return 0.0
        # cap the exponent too: factor**failures overflows a float after ~1000 failures
        raw = min(self.cap, self.base * self.factor ** min(self.failures - 1, 64))
        return raw * (1.0 - self.jitter * self._rng.random())

    def failed(self) -> float:
        """Record a failure; returns the delay before the next attempt is :meth:`ready`."""
        self.failures += 1
        wait = self.delay()
        self._next_at = self._clock() + wait
        return wait

    def succeeded(self) -> None:
        """Record a success: the next failure starts the schedule from ``base`` again."""
        self.failures = 0
        self._next_at = 0.0

    def ready(self) -> bool:
        """True when an attempt is due (always true while nothing has failed)."""
        return self._clock() >= self._next_at

    def remaining(self) -> float:
        """Seconds until :meth:`ready` turns true (0 if it already is)."""
        return max(0.0, self._next_at - self._clock())

    def call(
        self,
        fn: Callable[[], T],
        retry_on: tuple[type[BaseException], ...],
        max_elapsed: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> T:
        """Run ``fn`` until it returns, retrying on ``retry_on`` with backoff sleeps.

        Re-raises the last exception once ``max_elapsed`` seconds have passed (``None``: retry
        forever). Exceptions not in ``retry_on`` propagate at once.
        """
        start = self._clock()
        while True:
            try:
                result = fn()
            except retry_on:
                wait = self.failed()
                if max_elapsed is not None:
                    left = max_elapsed - (self._clock() - start)
                    if left <= 0:
                        raise
                    wait = min(wait, left)  # one last attempt right at the deadline
                sleep(wait)
                continue
            self.succeeded()
            return result
