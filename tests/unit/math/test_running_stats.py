"""Running mean / variance merged batch by batch against numpy over the concatenated data."""

from __future__ import annotations

import numpy as np
import pytest

from rlfleet.errors import ConfigError
from rlfleet.math.running_stats import RunningMeanStd


def test_batched_merges_equal_the_statistics_of_all_the_data():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 3)) * [1, 10, 0.1] for n in (1, 7, 0, 250, 33)]
    stats = RunningMeanStd((3,))
    for b in batches:
        stats.update(b)
    data = np.concatenate(batches)
    assert stats.count == len(data)
    np.testing.assert_allclose(stats.mean, data.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.var, data.var(axis=0), rtol=1e-10)


def test_one_at_a_time_welford_agrees():
    rng = np.random.default_rng(1)
    data = rng.normal(size=(100, 2))
    stats = RunningMeanStd((2,))
    for row in data:
        stats.update(row[None])
    np.testing.assert_allclose(stats.var, data.var(axis=0), rtol=1e-10)


def test_wrong_shape_is_refused():
    with pytest.raises(ConfigError, match=r"expected \[N, \[3\]\]"):
        RunningMeanStd((3,)).update(np.zeros((4, 2)))
