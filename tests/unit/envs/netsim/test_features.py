"""mvfst-rl feature vectors on synthetic ACK streams, against naive per-event references."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlfleet.envs.netsim.features import (
    FIELDS,
    History,
    StateBuilder,
    apply_action,
    parse_actions,
    reward,
    summarise,
)
from rlfleet.errors import ConfigError

MSS = 1252


def _synthetic(n: int, seed: int = 0, t0: float = 0.0) -> list[tuple]:
    """A stream of raw records: ACKs every ~2 ms with random RTTs, a few losses."""
    rng = np.random.default_rng(seed)
    out = []
    t = t0
    sent = acks = retx = tpto = tortx = cumack = 0
    min_rtt = math.inf
    for _ in range(n):
        t += float(rng.uniform(0.5, 4.0))
        lrtt = float(rng.uniform(40, 90))
        min_rtt = min(min_rtt, lrtt)
        acked = int(rng.integers(0, 3))
        lost = int(rng.random() < 0.1)
        sent += int(rng.integers(0, 4))
        acks += 64
        retx += lost
        tpto += int(rng.random() < 0.05)
        tortx += int(rng.random() < 0.02)
        cumack += acked
        cwnd = float(rng.uniform(10, 100))
        out.append(
            (
                t,
                min_rtt,
                float(rng.uniform(min_rtt, lrtt)),
                lrtt,
                60.0,
                5.0,
                cwnd,
                float(rng.integers(0, 120)),
                sent,
                acks,
                retx,
                int(rng.integers(0, 2)),
                tpto,
                tortx,
                acked,
                lost,
                cumack,
                float(lost and rng.random() < 0.5),
                float(rng.uniform(0, 25)),
            )
        )
    return out


def _naive_states(records: list[tuple], prev: tuple | None = None) -> np.ndarray:
    """Direct transcription of the mvfst-rl field table, one event at a time."""
    rows = []
    p = prev or (0.0,) * 19
    history = []  # (t, cum acked bytes)
    for r in records:
        (
            t,
            mn,
            st,
            lr,
            sr,
            var,
            cw,
            inf,
            sent,
            recv,
            retx,
            pto,
            tpto,
            tortx,
            acked,
            lost,
            cum,
            pers,
            _ad,
        ) = r
        history.append((t, cum * MSS))
        olds = [h for h in history if h[0] <= t - 100.0]
        ref = olds[-1] if olds else history[0]
        thr = (cum * MSS - ref[1]) / (t - ref[0]) * 1000.0 if t > ref[0] else 0.0
        cwb, infb = cw * MSS, inf * MSS
        rows.append(
            [
                mn / 100,
                st / 100,
                lr / 100,
                sr / 100,
                var / 100,
                (lr - mn) / 100,
                cwb / 1000,
                infb / 1000,
                max(cwb - infb, 0) / 1000,
                (sent - p[8]) * MSS / 1000,
                (recv - p[9]) / 1000,
                (retx - p[10]) * MSS / 1000,
                pto,
                tpto - p[12],
                retx - p[10],
                tortx - p[13],
                acked * MSS / 1000,
                thr / 1000,
                lost * MSS / 1000,
                pers,
            ]
        )
        p = r
    return np.asarray(rows)


def test_state_vectors_match_naive_definition() -> None:
    recs = _synthetic(300)
    sb = StateBuilder(MSS)
    got = np.vstack([sb.states(recs[:100]), sb.states(recs[100:250]), sb.states(recs[250:])])
    np.testing.assert_allclose(got, _naive_states(recs), rtol=1e-12, atol=1e-9)


def test_states_without_rtt_sample_are_dropped() -> None:
    recs = _synthetic(5)
    recs[2] = recs[2][:2] + (0.0,) + recs[2][3:]  # rtt_standing == 0: no sample yet
    s = StateBuilder(MSS).states(recs)
    assert s.shape == (4, 20)


def test_throughput_field_on_constant_ack_clock() -> None:
    # one 1252-byte packet acked every ms -> 1.252e6 bytes/s -> field value 1252 (bytes/s / 1000)
    recs = [
        (float(t), 40.0, 40.0, 40.0, 40.0, 1.0, 10, 5, t, t * 64, 0, 0, 0, 0, 1, 0, t, 0.0, 0.0)
        for t in range(1, 400)
    ]
    s = StateBuilder(MSS).states(recs)
    np.testing.assert_allclose(s[150:, 17], 1252.0, rtol=1e-9)


def test_summary_layout_and_zeroed_sums() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(7, 20))
    out = summarise(x).reshape(5, 20)
    naive_sum = [0.0 if j <= 8 else sum(x[:, j]) for j in range(20)]
    np.testing.assert_allclose(out[0], naive_sum)
    np.testing.assert_allclose(out[1], [np.mean(x[:, j]) for j in range(20)])
    np.testing.assert_allclose(out[2], [np.std(x[:, j], ddof=1) for j in range(20)])
    np.testing.assert_allclose(out[3], x.min(axis=0))
    np.testing.assert_allclose(out[4], x.max(axis=0))
    one = summarise(x[:1]).reshape(5, 20)
    assert np.all(one[2] == 0.0)  # std of one event is 0, not nan
    assert np.all(summarise(np.zeros((0, 20))) == 0.0)
    assert len(FIELDS) == 20


def test_observation_length_is_220_with_history() -> None:
    h = History(20, 5, 12.52)
    h.push(3, 25.04)
    v = h.vector()
    assert v.shape == (120,)
    assert 100 + v.size == 220
    last = v.reshape(20, 6)[-1]
    np.testing.assert_allclose(last, [0, 0, 0, 1, 0, 25.04])
    first = v.reshape(20, 6)[0]
    np.testing.assert_allclose(first, [1, 0, 0, 0, 0, 12.52])


def test_reward_closed_forms() -> None:
    s = np.zeros((3, 20))
    s[:, 17] = [1000.0, 2000.0, 3000.0]  # bytes/s / 1000 -> mean 2e6 B/s = 2 MB/s
    s[:, 5] = [0.1, 0.5, 0.2]  # delay / 100 -> max 50 ms
    s[:, 18] = [1.0, 0.0, 1.0]  # lost kB
    assert reward(s, "log") == pytest.approx(math.log(1e-5 + 2.0) - 0.2 * math.log(1e-5 + 50.0))
    assert reward(s, "linear") == pytest.approx(2.0 - 0.2 * 50.0)
    assert reward(s, "linear", (1.0, 0.2, 10.0)) == pytest.approx(2.0 - 10.0 - 10 * 0.002)
    assert reward(s, "linear", max_delay=False) == pytest.approx(2.0 - 0.2 * (80 / 3))
    with pytest.raises(ConfigError, match="valid: log, linear"):
        reward(s, "cubed")


def test_actions_parse_and_clamp() -> None:
    acts = parse_actions("0,/2,-10,+10,*2")
    assert [apply_action(100.0, a, 2, 2000) for a in acts] == [100.0, 50.0, 90.0, 110.0, 200.0]
    assert apply_action(3.0, acts[1], 2, 2000) == 2.0
    assert apply_action(1500.0, acts[4], 2, 2000) == 2000.0
    assert len(parse_actions("0,/2,/1.5,-10,+10,*1.5,*2")) == 7
    with pytest.raises(ConfigError, match="bad action"):
        parse_actions("0,%2")
