"""The compiled tick engine's state for a batch of single-flow envs, and what is done to it.

:class:`EngineBatch` owns the packed per-env rows of :mod:`.fast` (sender, receiver and link
state, the links' configuration, the event buffers of the current window, the one-way-delay
histogram), the schedule tables the rows point into, and the window summaries of
:mod:`.fast_features`. It loads a scenario into one row, runs masked rows to a target time,
summarises their window, and reports an episode's delivery metrics. The Gymnasium side --
actions, observations, rewards, resets -- is :class:`.vector.NetSimVectorEnv`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlfleet.envs.netsim import fast
from rlfleet.envs.netsim.fast_features import summarise_window
from rlfleet.envs.netsim.scenarios.spec import Scenario, Trace, build_schedule
from rlfleet.envs.netsim.schedule import ConstantSchedule, TableSchedule
from rlfleet.errors import ConfigError

__all__ = ["TABLE_COMPACT_AT", "EngineBatch", "check_engine_limits"]

#: Schedule-table length (entries) past which tables of scenarios no longer in use are dropped.
TABLE_COMPACT_AT = 20_000_000


def check_engine_limits(
    window_ms: float,
    action_delay_ms: float | None,
    duration_s: float,
    cwnd_bounds: tuple[float, float, float],
) -> None:
    """Refuse what the 1 ms-tick engine cannot run: a window or a fixed action delay that is not
    a whole number of ms, an episode shorter than a window, and ``(min_cwnd, init_cwnd,
    max_cwnd)`` out of order or beyond what the packet ring holds."""
    for name, v in (("window_ms", window_ms), ("action_delay_ms", action_delay_ms)):
        if v is not None and (v < 0 or v != int(v) or (name == "window_ms" and v == 0)):
            raise ConfigError(f"{name} must be a whole number of ms (>0 for the window), got {v}")
    if duration_s * 1000 < window_ms:
        raise ConfigError(f"duration_s*1000 must be >= window_ms, got {duration_s}, {window_ms}")
    min_cwnd, init_cwnd, max_cwnd = cwnd_bounds
    if not 0 < min_cwnd <= init_cwnd <= max_cwnd <= fast.RING // 2:
        raise ConfigError(
            f"need 0 < min_cwnd <= init_cwnd <= max_cwnd <= {fast.RING // 2}, "
            f"got {min_cwnd}, {init_cwnd}, {max_cwnd}"
        )


class EngineBatch:
    """Packed engine state for ``num_envs`` single-flow envs.

    Args:
        num_envs: rows.
        mss: packet size in bytes.
        init_cwnd, min_cwnd, max_cwnd: the sender's window bounds, in packets.
        receiver: the receiver profile (:func:`.receivers.receiver_profile`), ``ack_every`` and
            ``ack_timer_ms`` resolved.
    """

    def __init__(
        self,
        num_envs: int,
        *,
        mss: int,
        init_cwnd: float,
        min_cwnd: float,
        max_cwnd: float,
        receiver: dict[str, Any],
    ) -> None:
        B, R = num_envs, fast.RING
        self.num_envs = num_envs
        self.mss = mss
        self.init_cwnd, self.min_cwnd, self.max_cwnd = init_cwnd, min_cwnd, max_cwnd
        self.receiver = receiver
        self.int_state = np.zeros((B, fast.I_WIDTH), dtype=np.int64)
        self.float_state = np.zeros((B, fast.F_WIDTH), dtype=np.float64)
        # views of the packed rows, for readable Python-side access
        self.ist = self.int_state[:, : fast.I_NI]
        self.sc = self.int_state[:, fast.O_SC : fast.O_SC + fast.S_NI]
        self.fst = self.float_state[:, : fast.F_NF]
        self.cfg = self.float_state[:, fast.O_CFG : fast.O_CFG + fast.C_NC]
        self.sc[:] = 1
        self.ev = np.zeros((B, fast.EV_MAX, fast.N_RAW), dtype=np.float64)
        self.owd = np.zeros((B, fast.OWD_BINS), dtype=np.int64)
        self.rxbytes = np.zeros(B, dtype=np.float64)
        # the window summaries (mvfst-rl's 100 features and the engine-native reward)
        self.prev = np.zeros((B, fast.N_RAW), dtype=np.float64)
        self.tail_t = np.zeros((B, R), dtype=np.float64)
        self.tail_c = np.zeros((B, R), dtype=np.float64)
        self.tidx = np.zeros((B, 3), dtype=np.int64)
        self.out = np.zeros((B, 100), dtype=np.float64)
        self.rew = np.zeros(B, dtype=np.float64)
        self.nvalid = np.zeros(B, dtype=np.int64)
        self.tab = np.zeros(1, dtype=np.int64)
        self._tab_index: dict[Trace, tuple[int, int, int]] = {}
        self.scenarios: list[Scenario | None] = [None] * num_envs

    @property
    def cwnd(self) -> np.ndarray:
        """Every row's congestion window in packets (a view: writes reach the engine)."""
        return self.fst[:, fast.F_CWND]

    # ------------------------------------------------------------------ schedules
    def _sched_params(self, tr: Trace) -> list[int]:
        s = build_schedule(tr)
        if isinstance(s, ConstantSchedule):
            return [0, s._num, s._den, 0, 1, 1]
        assert isinstance(s, TableSchedule)
        if tr not in self._tab_index:
            if len(self.tab) > TABLE_COMPACT_AT:
                self._compact_tables()
            off = len(self.tab)
            self.tab = np.concatenate([self.tab, np.asarray(s._times, dtype=np.int64)])
            self._tab_index[tr] = (off, len(s._times), s.period_ms)
        off, n, per = self._tab_index[tr]
        return [1, 1, 1, off, n, per]

    def _compact_tables(self) -> None:
        # keep only the traces of scenarios in use; offsets are re-issued on the next lookup
        self.tab = np.zeros(1, dtype=np.int64)
        self._tab_index = {}
        for e, sc in enumerate(self.scenarios):
            if sc is not None:
                up = self._sched_params(sc.uplink)
                dn = self._sched_params(sc.downlink or sc.uplink)
                self.sc[e] = up + dn

    # ------------------------------------------------------------------ rows
    def load(self, e: int, sc: Scenario, seed: int) -> None:
        """Start row ``e`` afresh on scenario ``sc`` (integer delays) with the engine seed
        ``seed``: link configuration, sender and receiver state, and the flow's first window
        sent at t = 0."""
        self.scenarios[e] = sc
        self.sc[e] = self._sched_params(sc.uplink) + self._sched_params(sc.downlink or sc.uplink)
        c = self.cfg[e]
        c[fast.C_DUP] = c[fast.C_DDN] = sc.delay_ms
        c[fast.C_LUP], c[fast.C_LDN] = sc.loss_up, sc.loss_down
        c[fast.C_MSS], c[fast.C_ACKSZ] = self.mss, 64
        c[fast.C_ACKEV], c[fast.C_ACKTM] = self.receiver["ack_every"], self.receiver["ack_timer_ms"]
        c[fast.C_MINCW], c[fast.C_MAXCW] = self.min_cwnd, self.max_cwnd
        c[fast.C_TTHR] = self.receiver["time_threshold"]
        c[fast.C_ATSRTT] = self.receiver["ack_timer_srtt"]
        for col, v in (
            (fast.C_UPK, sc.up_queue_packets),
            (fast.C_UBY, sc.up_queue_bytes),
            (fast.C_DPK, sc.down_queue_packets),
            (fast.C_DBY, sc.down_queue_bytes),
        ):
            c[col] = -1.0 if v is None else float(v)
        self.ist[e] = 0
        self.ist[e, fast.I_UK] = self.ist[e, fast.I_DK] = -1
        self.ist[e, fast.I_UTK] = self.ist[e, fast.I_DTK] = -1
        self.ist[e, fast.I_RNG] = seed
        self.fst[e] = 0.0
        self.fst[e, fast.F_CWND] = self.init_cwnd
        self.fst[e, fast.F_SRTT] = self.receiver["initial_rtt_ms"]
        self.fst[e, fast.F_RTTVAR] = self.receiver["initial_rtt_ms"] / 2
        self.fst[e, fast.F_MINRTT] = np.inf
        self.fst[e, fast.F_SRTTPREV] = self.fst[e, fast.F_SRTT]
        self.fst[e, fast.F_SRTTMARK] = -np.inf
        self.fst[e, fast.F_RXTIMER] = -1.0
        self.owd[e] = 0
        self.rxbytes[e] = 0.0
        self.prev[e] = 0.0
        self.tidx[e] = 0
        # the flow starts at t = 0 with its initial window, as the event engine's flow start
        only = np.zeros(self.num_envs, dtype=bool)
        only[e] = True
        self.kick(only)

    def kick(self, mask: np.ndarray) -> None:
        """Let the masked rows' senders send what their (new) windows allow now."""
        fast.kick(self.int_state, self.float_state, self.tab, mask)

    def run(self, target: np.ndarray, mask: np.ndarray) -> None:
        """Advance the masked rows to ``target`` ms (per row); refuse a ring overflow."""
        fast.run_until(
            self.int_state,
            self.float_state,
            self.tab,
            self.ev,
            self.owd,
            self.rxbytes,
            mask,
            target,
        )
        if self.ist[:, fast.I_OVF].any():
            bad = int(np.flatnonzero(self.ist[:, fast.I_OVF])[0])
            raise ConfigError(
                f"vector engine ring overflow in env {bad} (scenario "
                f"{self.scenarios[bad].name!r}); lower max_cwnd or use NetSimEnv"
            )

    def discard_events(self, mask: np.ndarray) -> None:
        """Drop the masked rows' recorded events (a window that closed unobserved)."""
        self.ist[mask, fast.I_NEV] = 0

    def summarise(
        self, mask: np.ndarray, coeffs: np.ndarray, max_delay: bool, log_reward: bool
    ) -> None:
        """Summarise the masked rows' window into :attr:`out` (features), :attr:`rew`
        (engine-native reward) and :attr:`nvalid`, and clear their events."""
        summarise_window(
            self.ev,
            self.ist[:, fast.I_NEV],
            self.prev,
            self.tail_t,
            self.tail_c,
            self.tidx,
            self.cfg[:, fast.C_MSS].copy(),
            self.out,
            self.rew,
            self.nvalid,
            coeffs,
            max_delay,
            log_reward,
            mask,
        )
        self.discard_events(mask)

    def episode_metrics(self, e: int) -> dict[str, float]:
        """Delivered throughput (Mbit/s over the elapsed time), OWD mean/p95 (Pantheon rule)."""
        h = self.owd[e]
        n = int(h.sum())
        t = self.fst[e, fast.F_NOW]
        out = {"delivered_packets": float(n), "throughput_mbps": self.rxbytes[e] * 8 / t / 1000}
        if n:
            idx = int(np.around(0.95 * (n - 1)))  # numpy's "nearest" rank
            cum = np.cumsum(h)
            out["delay_p95_ms"] = float(np.searchsorted(cum, idx + 1))
            out["delay_mean_ms"] = float((h * np.arange(len(h))).sum() / n)
        return out
