"""``rlfleet bench learner``: the standalone measurement runs the preset's real learner core."""

from __future__ import annotations

import pytest

from benchmarks.learner import standalone


@pytest.mark.usefixtures("one_torch_thread")
def test_standalone_times_real_updates():
    got = standalone("cartpole", repeats=20)
    assert got["updates"] == 20
    assert 0 < got["q1_ms"] <= got["median_ms"] <= got["q3_ms"]
