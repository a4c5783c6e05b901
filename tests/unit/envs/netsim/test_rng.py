"""The loss RNG: the event engine's SplitMix64 and the compiled engine draw the same stream."""

from __future__ import annotations

import numpy as np

from rlfleet.envs.netsim import fast
from rlfleet.envs.netsim.rng import SplitMix64


def test_rng_stream_matches_event_engine() -> None:
    ist = np.zeros(fast.I_NI, dtype=np.int64)  # one env's row, as run_until passes it
    ist[fast.I_RNG] = 987654321
    r = SplitMix64(987654321)
    a = [fast._rand(ist, 0) for _ in range(1000)]
    b = [r.random() for _ in range(1000)]
    assert a == b
    assert 0.45 < float(np.mean(a)) < 0.55 and min(a) >= 0.0 and max(a) < 1.0
