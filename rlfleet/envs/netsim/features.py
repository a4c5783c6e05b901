"""mvfst-rl observations and rewards, computed with numpy from the engine's raw event records.

The engine appends one raw record per ACK-or-loss callback (see ``Flow.record``); this module
turns a window of them into mvfst-rl's 20-field ``NetworkState`` vectors (normalised: ms / 100,
bytes / 1000, counters raw), aggregates them as sum / mean / std / min / max (stats-major, the sum
zeroed for fields 0-8), appends the action history, and computes the reward.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from rlfleet.errors import ConfigError

#: mvfst-rl NetworkState fields, in enum order.
FIELDS: tuple[str, ...] = (
    "rtt_min",
    "rtt_standing",
    "lrtt",
    "srtt",
    "rtt_var",
    "delay",
    "cwnd",
    "in_flight",
    "writable",
    "sent",
    "received",
    "retransmitted",
    "pto_count",
    "total_pto_delta",
    "rtx_count",
    "timeout_based_rtx_count",
    "acked",
    "throughput",
    "lost",
    "persistent_congestion",
)
#: The 7-field compact set of mvfst-rl's mtenv branch.
COMPACT_FIELDS: tuple[str, ...] = (
    "rtt_min",
    "noisy_rtt_with_delay",
    "delay",
    "ack_delay",
    "cwnd",
    "throughput_from_cwnd",
    "throughput",
)
STATS: tuple[str, ...] = ("sum", "mean", "std", "min", "max")
NORM_MS = 100.0
NORM_BYTES = 1000.0
#: raw record columns (engine order)
_T, _MIN, _ST, _LR, _SR, _VAR, _CW, _INF, _SENT, _RECV, _RETX, _PTO, _TPTO, _TORTX = range(14)
_ACKED, _LOST, _CUMACK, _PERSIST, _ACKDELAY = range(14, 19)
N_RAW = 19
#: the sum is meaningless for RTTs, delay, cwnd, in_flight and writable: zeroed as in mvfst-rl
_ZERO_SUM_FULL = np.arange(20) <= 8
_ZERO_SUM_COMPACT = np.array([True, True, True, True, True, False, False])
#: rolling window of the bandwidth sampler (field 17), ms
THROUGHPUT_WINDOW_MS = 100.0


class StateBuilder:
    """Turns raw records into normalised per-event state vectors, window by window.

    Keeps the last record (for deltas of cumulative counters) and a short tail of
    (time, cumulative acked) for the rolling-window throughput across window boundaries.
    """

    def __init__(self, mss: int, compact: bool = False) -> None:
        self.mss = float(mss)
        self.compact = compact
        self.n_fields = len(COMPACT_FIELDS) if compact else len(FIELDS)
        self._prev = np.zeros(N_RAW)
        self._tail_t = np.zeros(0)
        self._tail_c = np.zeros(0)

    def reset(self) -> None:
        self._prev = np.zeros(N_RAW)
        self._tail_t = np.zeros(0)
        self._tail_c = np.zeros(0)

    def full_states(self, raw: np.ndarray) -> np.ndarray:
        """(n, 20) normalised NetworkState vectors for raw records of shape (n, 19), all kept."""
        n = raw.shape[0]
        mss = self.mss
        prev = np.vstack([self._prev[None, :], raw])
        d = np.diff(prev, axis=0)  # deltas of the cumulative counters
        s = np.empty((n, 20))
        s[:, 0] = raw[:, _MIN] / NORM_MS
        s[:, 1] = raw[:, _ST] / NORM_MS
        s[:, 2] = raw[:, _LR] / NORM_MS
        s[:, 3] = raw[:, _SR] / NORM_MS
        s[:, 4] = raw[:, _VAR] / NORM_MS
        s[:, 5] = (raw[:, _LR] - raw[:, _MIN]) / NORM_MS
        s[:, 6] = raw[:, _CW] * mss / NORM_BYTES
        s[:, 7] = raw[:, _INF] * mss / NORM_BYTES
        s[:, 8] = np.maximum(s[:, 6] - s[:, 7], 0.0)
        s[:, 9] = d[:, _SENT] * mss / NORM_BYTES
        s[:, 10] = d[:, _RECV] / NORM_BYTES
        s[:, 11] = d[:, _RETX] * mss / NORM_BYTES
        s[:, 12] = raw[:, _PTO]
        s[:, 13] = d[:, _TPTO]
        s[:, 14] = d[:, _RETX]
        s[:, 15] = d[:, _TORTX]
        s[:, 16] = raw[:, _ACKED] * mss / NORM_BYTES
        s[:, 17] = self._throughput(raw[:, _T], raw[:, _CUMACK] * mss) / NORM_BYTES
        s[:, 18] = raw[:, _LOST] * mss / NORM_BYTES
        s[:, 19] = raw[:, _PERSIST]
        self._prev = raw[-1].copy()
        return s

    def _throughput(self, t: np.ndarray, cum: np.ndarray) -> np.ndarray:
        """Acked bytes/s over a rolling window of at least 100 ms ending at each event."""
        tt = np.concatenate([self._tail_t, t])
        cc = np.concatenate([self._tail_c, cum])
        # j = last event at or before t_i - window; before that exists, the first event seen
        j = np.searchsorted(tt, t - THROUGHPUT_WINDOW_MS, side="right") - 1
        j = np.maximum(j, 0)
        dt = t - tt[j]
        out = np.where(dt > 0, (cum - cc[j]) / np.where(dt > 0, dt, 1.0) * 1000.0, 0.0)
        keep = tt >= tt[-1] - 2 * THROUGHPUT_WINDOW_MS
        keep[-1] = True
        first = int(np.argmax(keep))
        lo = max(first - 1, 0)  # keep one event older than the window for the next lookup
        self._tail_t = tt[lo:]
        self._tail_c = cc[lo:]
        return out

    def states(self, records: list[tuple]) -> np.ndarray:
        """Valid state vectors of a window (rows with no RTT sample yet are dropped)."""
        if not records:
            return np.zeros((0, self.n_fields))
        raw = np.asarray(records, dtype=np.float64)
        s = self.full_states(raw)
        valid = (s[:, 1] > 0) & (s[:, 5] >= 0)  # mvfst-rl drops rtt_standing == 0 / delay < 0
        if self.compact:
            c = np.empty((len(s), 7))
            c[:, 0] = s[:, 0]
            c[:, 1] = s[:, 2]
            c[:, 2] = s[:, 5]
            c[:, 3] = raw[:, _ACKDELAY] / NORM_MS
            c[:, 4] = s[:, 6]
            st = np.where(s[:, 1] > 0, s[:, 1], 1.0)
            c[:, 5] = np.where(s[:, 1] > 0, s[:, 6] / st, 0.0)  # (cwnd/1000) / (rtt_standing/100)
            c[:, 6] = s[:, 17]
            s = c
        return s[valid]


def summarise(states: np.ndarray, compact: bool = False) -> np.ndarray:
    """sum, mean, std (unbiased if n > 1, else 0), min, max of each field, stats-major."""
    nf = states.shape[1]
    out = np.zeros((5, nf))
    n = states.shape[0]
    if n:
        out[0] = states.sum(axis=0)
        out[1] = states.mean(axis=0)
        out[2] = states.std(axis=0, ddof=1) if n > 1 else 0.0
        out[3] = states.min(axis=0)
        out[4] = states.max(axis=0)
    out[0, _ZERO_SUM_COMPACT if compact else _ZERO_SUM_FULL] = 0.0
    return out.reshape(-1)


def reward(
    states: np.ndarray,
    kind: str = "log",
    coeffs: tuple[float, float, float] = (1.0, 0.2, 0.0),
    offsets: tuple[float, float, float] = (1e-5, 1e-5, 1e-5),
    max_delay: bool = True,
    compact: bool = False,
) -> float:
    """mvfst-rl reward over a window's state vectors.

    ``log``: a log(a' + thr_MBps) - b log(b' + delay_ms) - c log(c' + lost_MB);
    ``linear``: a thr_MBps - b delay_ms - c lost_MB. Delay is the window max (or mean) of field 5.
    """
    if states.shape[0] == 0:
        return 0.0
    ti, di = (6, 2) if compact else (17, 5)
    thr = float(states[:, ti].mean()) * NORM_BYTES * 1e-6
    dcol = states[:, di]
    delay = float(dcol.max() if max_delay else dcol.mean()) * NORM_MS
    lost = 0.0 if compact else float(states[:, 18].sum()) * NORM_BYTES * 1e-6
    a, b, c = coeffs
    if kind == "log":
        oa, ob, oc = offsets
        r = a * math.log(oa + thr) - b * math.log(ob + delay)
        if c:
            r -= c * math.log(oc + lost)
        return r
    if kind == "linear":
        return a * thr - b * delay - c * lost
    raise ConfigError(f"unknown reward kind {kind!r}; valid: log, linear")


def parse_actions(spec: str) -> list[tuple[str, float]]:
    """mvfst-rl action strings, e.g. ``"0,/2,-10,+10,*2"`` -> [(op, value), ...]."""
    out: list[tuple[str, float]] = []
    for tok in spec.split(","):
        tok = tok.strip()
        if tok == "0":
            out.append(("0", 0.0))
            continue
        op, val = tok[:1], tok[1:]
        try:
            v = float(val)
        except ValueError:
            v = float("nan")
        if op not in "/*+-" or not op or not math.isfinite(v) or v <= 0:
            raise ConfigError(
                f"bad action {tok!r} in {spec!r}; write 0, /x, *x, +x or -x with x > 0"
            )
        out.append((op, v))
    if len(out) < 2:
        raise ConfigError(f"need at least two actions, got {spec!r}")
    return out


def apply_action(cwnd: float, action: tuple[str, float], lo: float, hi: float) -> float:
    """New cwnd (packets) after one action, clamped to [lo, hi]."""
    op, v = action
    if op == "/":
        cwnd = cwnd / v
    elif op == "*":
        cwnd = cwnd * v
    elif op == "+":
        cwnd = cwnd + v
    elif op == "-":
        cwnd = cwnd - v
    return min(max(cwnd, lo), hi)


def apply_actions(
    cwnd: np.ndarray,
    actions: np.ndarray,
    mask: np.ndarray,
    table: list[tuple[str, float]],
    lo: float,
    hi: float,
) -> None:
    """:func:`apply_action` for a batch, in place: row ``i`` takes ``table[actions[i]]`` where
    ``mask[i]``; then every row is clamped to ``[lo, hi]``."""
    for i, (op, v) in enumerate(table):
        m = mask & (actions == i)
        if op == "/":
            cwnd[m] /= v
        elif op == "*":
            cwnd[m] *= v
        elif op == "+":
            cwnd[m] += v
        elif op == "-":
            cwnd[m] -= v
    np.clip(cwnd, lo, hi, out=cwnd)


class History:
    """The last ``size`` actions as one-hot plus the resulting cwnd (bytes / 1000), oldest first."""

    def __init__(self, size: int, n_actions: int, init_cwnd_kb: float) -> None:
        self.size = size
        self.n_actions = n_actions
        self._buf: deque[tuple[int, float]] = deque(maxlen=max(size, 1))
        self.reset(init_cwnd_kb)

    def reset(self, init_cwnd_kb: float) -> None:
        self._buf.clear()
        for _ in range(self.size):
            self._buf.append((0, init_cwnd_kb))

    def push(self, action: int, cwnd_kb: float) -> None:
        if self.size:
            self._buf.append((action, cwnd_kb))

    def vector(self) -> np.ndarray:
        out = np.zeros((self.size, self.n_actions + 1))
        for i, (a, c) in enumerate(self._buf if self.size else ()):
            out[i, a] = 1.0
            out[i, -1] = c
        return out.reshape(-1)
