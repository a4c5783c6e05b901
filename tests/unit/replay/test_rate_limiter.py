"""SamplesPerInsertLimiter: decisions against the closed-form band, blocking waits with threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from rlfleet.errors import ConfigError
from rlfleet.replay.rate_limiter import SamplesPerInsertLimiter


def naive_can_sample(inserts, samples, n, spi, min_size, eb):
    if inserts < min_size:
        return False
    if spi is None:
        return True
    return inserts * spi - (samples + n) >= min_size * spi - eb


def naive_can_insert(inserts, samples, n, spi, min_size, eb):
    if spi is None or inserts < min_size:
        return True
    return (inserts + n) * spi - samples <= min_size * spi + eb


@pytest.mark.parametrize("spi", [None, 0.5, 4.0, 8.0])
def test_decisions_match_closed_form(spi):
    rng = np.random.default_rng(0)
    min_size, eb = 100, 600.0
    lim = SamplesPerInsertLimiter(spi, min_size_to_sample=min_size, error_buffer=eb)
    inserts = samples = 0
    for _ in range(2000):
        n_s = int(rng.integers(0, 64))
        n_i = int(rng.integers(0, 32))
        if spi is not None:
            n_i = min(n_i, int(2 * eb / spi))
        assert lim.can_sample(n_s) == naive_can_sample(inserts, samples, n_s, spi, min_size, eb)
        assert lim.can_insert(n_i) == naive_can_insert(inserts, samples, n_i, spi, min_size, eb)
        if rng.random() < 0.5:
            if lim.can_insert(n_i):
                lim.record_insert(n_i)
                inserts += n_i
        elif lim.can_sample(n_s):
            lim.record_sample(n_s)
            samples += n_s
    assert (lim.inserts, lim.samples) == (inserts, samples)
    assert inserts > min_size and samples > 0


def test_ratio_is_held_near_target():
    """Actors insert 64 at a time, learner samples 512, both always wait for permission."""
    spi, batch, push = 8.0, 512, 64
    eb = SamplesPerInsertLimiter.min_error_buffer(spi, batch, push)
    lim = SamplesPerInsertLimiter(spi, min_size_to_sample=1000, error_buffer=eb)
    lim.check_batch_sizes(batch, push)
    for _ in range(5000):
        progressed = False
        if lim.can_insert(push):
            lim.record_insert(push)
            progressed = True
        if lim.can_sample(batch):
            lim.record_sample(batch)
            progressed = True
        assert progressed, "deadlock"
    assert lim.samples > 0
    # samples stay within eb of (inserts - min_size) * spi.
    assert abs(lim.samples - (lim.inserts - 1000) * spi) <= eb + push * spi


def test_min_size_gates_sampling_and_never_blocks_filling():
    lim = SamplesPerInsertLimiter(2.0, min_size_to_sample=10, error_buffer=4.0)
    assert not lim.can_sample(1)
    lim.record_insert(9)
    assert not lim.can_sample(1)
    assert lim.can_insert(4)  # fewer than min_size inserted: always allowed
    lim.record_insert(1)
    assert lim.can_sample(4) and not lim.can_sample(5)
    assert lim.can_insert(2) and not lim.can_insert(3)


def test_unlimited():
    lim = SamplesPerInsertLimiter(None, min_size_to_sample=5)
    assert not lim.can_sample(1)
    lim.record_insert(5)
    lim.record_sample(10**9)
    assert lim.can_sample(10**6) and lim.can_insert(10**6)


def test_wait_sample_blocks_until_insert():
    lim = SamplesPerInsertLimiter(1.0, min_size_to_sample=4, error_buffer=8.0)
    assert lim.wait_sample(4, timeout=0.05) is False  # nothing inserted: must not pass
    result = {}
    started = threading.Event()

    def learner():
        started.set()
        result["ok"] = lim.wait_sample(4, timeout=30)

    t = threading.Thread(target=learner)
    t.start()
    started.wait()
    assert "ok" not in result or result["ok"] is False  # cannot have succeeded yet
    lim.record_insert(4)
    t.join(timeout=30)
    assert result["ok"] is True


def test_wait_insert_blocks_until_sample():
    lim = SamplesPerInsertLimiter(1.0, min_size_to_sample=1, error_buffer=2.0)
    lim.record_insert(3)  # diff = 3 - 0 = 3 = offset(1) + eb(2): full
    assert not lim.can_insert(1)
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("ok", lim.wait_insert(1, timeout=30)))
    t.start()
    lim.record_sample(1)
    t.join(timeout=30)
    assert result["ok"] is True


def test_wait_times_out_and_close_wakes():
    lim = SamplesPerInsertLimiter(1.0, min_size_to_sample=1, error_buffer=2.0)
    assert lim.wait_sample(1, timeout=0.01) is False
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("ok", lim.wait_sample(1, timeout=60)))
    t.start()
    lim.close()
    t.join(timeout=30)
    assert not t.is_alive() and result["ok"] is False
    lim.record_insert(5)
    assert lim.wait_sample(1, timeout=1) is False  # closed stays closed


def test_state_dict_round_trip():
    lim = SamplesPerInsertLimiter(4.0, min_size_to_sample=10, error_buffer=100.0)
    lim.record_insert(50)
    lim.record_sample(123)
    state = lim.state_dict()
    assert all(isinstance(v, (int, float)) for v in state.values())
    other = SamplesPerInsertLimiter(4.0, min_size_to_sample=10, error_buffer=100.0)
    other.load_state_dict(state)
    assert (other.inserts, other.samples) == (50, 123)
    for n in (1, 50, 100, 150):
        assert other.can_sample(n) == lim.can_sample(n)
        assert other.can_insert(n // 4) == lim.can_insert(n // 4)
    with pytest.raises(ConfigError, match="inserts"):
        other.load_state_dict({"samples": 3})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(samples_per_insert=0), "samples_per_insert must be"),
        (dict(samples_per_insert=-1.0), "got -1.0"),
        (dict(samples_per_insert=float("nan")), "samples_per_insert"),
        (dict(samples_per_insert=8, min_size_to_sample=0), "min_size_to_sample"),
        (dict(samples_per_insert=8, error_buffer=0), "error_buffer must be"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        SamplesPerInsertLimiter(**kwargs)


def test_impossible_requests_and_batch_check():
    lim = SamplesPerInsertLimiter(8.0, min_size_to_sample=10, error_buffer=100.0)
    with pytest.raises(ConfigError, match="sample of 512 items can never fit"):
        lim.wait_sample(512, timeout=1)
    with pytest.raises(ConfigError, match="insert of 64 items"):
        lim.can_insert(64)
    with pytest.raises(ConfigError, match=r"must be >= 512"):
        lim.check_batch_sizes(512, 64)
    with pytest.raises(ConfigError, match="non-negative integer"):
        lim.record_insert(-1)
