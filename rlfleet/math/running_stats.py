"""Running mean and variance of a stream of batches, merged exactly (Chan et al. 1979).

Two summaries ``(n_a, mean_a, M2_a)`` and ``(n_b, mean_b, M2_b)`` (``M2`` = sum of squared
deviations from the mean) combine as

    n     = n_a + n_b
    delta = mean_b - mean_a
    mean  = mean_a + delta * n_b / n
    M2    = M2_a + M2_b + delta^2 * n_a * n_b / n

so a whole batch is summarised with numpy in one pass and merged once: no per-sample loop, and
the same result as Welford's one-at-a-time update up to rounding. Kept in float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rlfleet.errors import ConfigError

__all__ = ["RunningMeanStd"]


@dataclass
class RunningMeanStd:
    """Per-feature count, mean and ``M2`` of everything :meth:`update` has seen."""

    shape: tuple[int, ...]
    count: float = 0.0
    mean: np.ndarray = field(default=None)  # type: ignore[assignment]
    m2: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.shape = tuple(int(d) for d in self.shape)
        if self.mean is None:
            self.mean = np.zeros(self.shape, np.float64)
        if self.m2 is None:
            self.m2 = np.zeros(self.shape, np.float64)

    @property
    def var(self) -> np.ndarray:
        """Population variance (0 before two samples)."""
        return self.m2 / self.count if self.count > 0 else np.zeros(self.shape, np.float64)

    def update(self, batch: np.ndarray) -> None:
        """Merge a batch ``[N, *shape]`` (N may be 0)."""
        x = np.asarray(batch, dtype=np.float64)
        if x.shape[1:] != self.shape:
            raise ConfigError(f"batch has shape {x.shape}; expected [N, {list(self.shape)}]")
        n = x.shape[0]
        if n == 0:
            return
        mean = x.mean(axis=0)
        m2 = np.square(x - mean).sum(axis=0)
        self.merge(float(n), mean, m2)

    def merge(self, n_b: float, mean_b: np.ndarray, m2_b: np.ndarray) -> None:
        """Combine with another summary ``(n_b, mean_b, M2_b)``."""
        if n_b <= 0:
            return
        n_a = self.count
        n = n_a + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + np.square(delta) * (n_a * n_b / n)
        self.count = n
