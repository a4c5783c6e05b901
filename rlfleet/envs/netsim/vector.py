"""``NetSimVectorEnv``: many single-flow RL envs on the compiled tick engine (:mod:`.fast`).

Same problem, spaces, action/delay semantics and reward as :class:`.env.NetSimEnv` (full
220-float observation), built for training throughput: one numba call advances every env.
Autoreset follows Gymnasium's default NEXT_STEP mode (the step after an episode ends returns
the first observation of the next one, reward 0, and ignores that action).

Limits (checked, with a clear error): integer one-way delays, whole-ms action delays, one flow
per env, no compact observation, no competing flows. Use :class:`.env.NetSimEnv` for those.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import batch_space

from rlfleet.envs.netsim import fast
from rlfleet.envs.netsim.curriculum import Curriculum
from rlfleet.envs.netsim.delays import parse_action_delay
from rlfleet.envs.netsim.env import DEFAULT_ACTIONS
from rlfleet.envs.netsim.fast_features import summarise_window
from rlfleet.envs.netsim.features import parse_actions
from rlfleet.envs.netsim.privileged import N_PRIVILEGED, privileged_features
from rlfleet.envs.netsim.receivers import receiver_profile
from rlfleet.envs.netsim.rewards import RewardSpec, RunningRewardNorm, path_key, window_rewards
from rlfleet.envs.netsim.scenarios.registry import get_scenario
from rlfleet.envs.netsim.scenarios.samplers import SAMPLER_PARAMS, SAMPLERS, sample_scenario
from rlfleet.envs.netsim.scenarios.spec import Scenario, Trace, build_schedule
from rlfleet.envs.netsim.schedule import ConstantSchedule, TableSchedule
from rlfleet.errors import ConfigError

_TABLE_COMPACT_AT = 20_000_000


class NetSimVectorEnv(gym.vector.VectorEnv):
    """A batch of NetSim envs stepped together by compiled code.

    Args:
        num_envs: batch size.
        scenario: one scenario name / sampler / Scenario for all envs, or a list (one per env).
        Other arguments as :class:`.env.NetSimEnv`.
    """

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int,
        scenario: str | Scenario | list[str | Scenario] = "aws_korea_to_china",
        *,
        duration_s: float = 30.0,
        window_ms: float = 100.0,
        action_delay_ms: float | str = 0.0,
        history: int = 20,
        actions: str = DEFAULT_ACTIONS,
        reward_kind: str = "log",
        reward_coeffs: tuple[float, float, float] = (1.0, 0.2, 0.0),
        max_delay: bool = True,
        loss_penalty: float = 0.0,
        reward_norm: str = "none",
        reward_norm_coeff: float = 1e-3,
        privileged: bool = False,
        curriculum: bool = False,
        mss: int = 1252,
        init_cwnd: float = 10.0,
        min_cwnd: float = 2.0,
        max_cwnd: float = 2000.0,
        ack_every: int | None = None,
        ack_timer_ms: float | None = None,
        receiver: str = "pantheon",
    ) -> None:
        if num_envs < 1:
            raise ConfigError(f"num_envs must be >= 1, got {num_envs}")
        self.reward_spec = RewardSpec(
            reward_kind,
            tuple(float(c) for c in reward_coeffs),
            bool(max_delay),
            float(loss_penalty),
            reward_norm,
            float(reward_norm_coeff),
        )
        self._reward_norm = (
            RunningRewardNorm(reward_norm_coeff) if reward_norm == "running" else None
        )
        self.privileged = bool(privileged)
        self.action_delay = parse_action_delay(action_delay_ms)
        fixed = self.action_delay.fixed
        for name, v in (("window_ms", window_ms), ("action_delay_ms", fixed)):
            if v is not None and (v < 0 or v != int(v) or (name == "window_ms" and v == 0)):
                raise ConfigError(
                    f"{name} must be a whole number of ms (>0 for the window), got {v}"
                )
        self.receiver = receiver_profile(receiver, ack_every)
        if ack_timer_ms is not None:
            self.receiver["ack_timer_ms"] = float(ack_timer_ms)
        if duration_s * 1000 < window_ms:
            raise ConfigError(
                f"duration_s*1000 must be >= window_ms, got {duration_s}, {window_ms}"
            )
        if not 0 < min_cwnd <= init_cwnd <= max_cwnd <= fast.RING // 2:
            raise ConfigError(
                f"need 0 < min_cwnd <= init_cwnd <= max_cwnd <= {fast.RING // 2}, "
                f"got {min_cwnd}, {init_cwnd}, {max_cwnd}"
            )
        specs = list(scenario) if isinstance(scenario, (list, tuple)) else [scenario] * num_envs
        if len(specs) != num_envs:
            raise ConfigError(f"got {len(specs)} scenarios for {num_envs} envs")
        for s in specs:
            if not isinstance(s, Scenario) and s not in SAMPLERS:
                get_scenario(s)
        self.num_envs = num_envs
        self._specs = specs
        self.curriculum = self._make_curriculum(specs) if curriculum else None
        self.duration_ms = float(duration_s) * 1000.0
        self.window_ms = float(window_ms)
        # the constant Delta, or None when it is drawn per action (rounded to whole ms)
        self.action_delay_ms = fixed
        self._delay_rng = np.random.default_rng(0)
        self.action_table = parse_actions(actions)
        self.n_actions = len(self.action_table)
        self.history_size = int(history)
        self.reward_kind = reward_kind
        self.coeffs = np.asarray(reward_coeffs, dtype=np.float64)
        self.max_delay = bool(max_delay)
        self.mss = int(mss)
        self.init_cwnd, self.min_cwnd, self.max_cwnd = (
            float(init_cwnd),
            float(min_cwnd),
            float(max_cwnd),
        )
        self.ack_every = int(self.receiver["ack_every"])
        self.ack_timer_ms = float(self.receiver["ack_timer_ms"])
        obs_len = 100 + self.history_size * (self.n_actions + 1)
        obs_len += N_PRIVILEGED if self.privileged else 0
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_len,), np.float32)
        self.single_action_space = gym.spaces.Discrete(self.n_actions)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._alloc()
        self._tab = np.zeros(1, dtype=np.int64)
        self._tab_index: dict[Trace, tuple[int, int, int]] = {}
        self.scenarios: list[Scenario | None] = [None] * num_envs
        self._rngs: list[np.random.Generator] = [np.random.default_rng(i) for i in range(num_envs)]

    @staticmethod
    def _make_curriculum(specs: list) -> Curriculum:
        names = {s for s in specs if isinstance(s, str) and s in SAMPLERS}
        if len(names) != 1 or len(names) != len({str(s) for s in specs}):
            raise ConfigError(
                f"curriculum = true needs one sampler scenario for every env "
                f"({', '.join(SAMPLERS)}), got {sorted({str(s) for s in specs})}"
            )
        return Curriculum(SAMPLER_PARAMS[names.pop()].traces)

    # ------------------------------------------------------------------ storage
    def _alloc(self) -> None:
        B, R = self.num_envs, fast.RING
        self.int_state = np.zeros((B, fast.I_WIDTH), dtype=np.int64)
        self.float_state = np.zeros((B, fast.F_WIDTH), dtype=np.float64)
        # views of the packed rows, for readable Python-side access
        self.ist = self.int_state[:, : fast.I_NI]
        self.sc = self.int_state[:, fast.O_SC : fast.O_SC + fast.S_NI]
        self.fst = self.float_state[:, : fast.F_NF]
        self.cfg = self.float_state[:, fast.O_CFG : fast.O_CFG + fast.C_NC]
        self.sc[:] = 1
        self.ev = np.zeros((B, fast.EV_MAX, fast.N_RAW), dtype=np.float64)
        # summarise_window scratch: one row per valid event, and the per-field accumulators
        self._feat_tmp = np.empty((fast.EV_MAX, 20), dtype=np.float64)
        self._feat_acc = np.empty((5, 20), dtype=np.float64)
        self.owd = np.zeros((B, fast.OWD_BINS), dtype=np.int64)
        self.rxbytes = np.zeros(B, dtype=np.float64)
        self.prev = np.zeros((B, fast.N_RAW), dtype=np.float64)
        self.tail_t = np.zeros((B, R), dtype=np.float64)
        self.tail_c = np.zeros((B, R), dtype=np.float64)
        self.tidx = np.zeros((B, 3), dtype=np.int64)
        self.out = np.zeros((B, 100), dtype=np.float64)
        self.rew = np.zeros(B, dtype=np.float64)
        self.nvalid = np.zeros(B, dtype=np.int64)
        self.hist_a = np.zeros((B, max(self.history_size, 1)), dtype=np.int64)
        self.hist_c = np.zeros((B, max(self.history_size, 1)), dtype=np.float64)
        self.t_obs = np.zeros(B, dtype=np.float64)
        self.skipped = np.zeros(B, dtype=np.int64)
        self._needs_reset = np.zeros(B, dtype=bool)
        self.capacity_mbps = np.zeros(B)
        self.bdp_packets = np.zeros(B)
        self.base_rtt_ms = np.zeros(B)
        self._priv = np.zeros((B, N_PRIVILEGED), dtype=np.float32)
        self._keys = [""] * B

    def _sched_params(self, tr: Trace) -> list[int]:
        s = build_schedule(tr)
        if isinstance(s, ConstantSchedule):
            return [0, s._num, s._den, 0, 1, 1]
        assert isinstance(s, TableSchedule)
        if tr not in self._tab_index:
            if len(self._tab) > _TABLE_COMPACT_AT:
                self._compact_tables()
            off = len(self._tab)
            self._tab = np.concatenate([self._tab, np.asarray(s._times, dtype=np.int64)])
            self._tab_index[tr] = (off, len(s._times), s.period_ms)
        off, n, per = self._tab_index[tr]
        return [1, 1, 1, off, n, per]

    def _compact_tables(self) -> None:
        # keep only the traces of scenarios in use; offsets are re-issued on the next lookup
        self._tab = np.zeros(1, dtype=np.int64)
        self._tab_index = {}
        for e, sc in enumerate(self.scenarios):
            if sc is not None:
                up = self._sched_params(sc.uplink)
                dn = self._sched_params(sc.downlink or sc.uplink)
                self.sc[e] = up + dn

    # ------------------------------------------------------------------ reset
    def _reset_env(self, e: int, spec: str | Scenario) -> None:
        rng = self._rngs[e]
        if isinstance(spec, Scenario):
            sc = spec
        elif spec in SAMPLERS:
            w = self.curriculum.weights() if self.curriculum is not None else None
            sc = sample_scenario(spec, rng, w)
        else:
            sc = get_scenario(spec)
        if sc.delay_ms != int(sc.delay_ms):
            raise ConfigError(
                f"scenario {sc.name!r}: the vector engine needs an integer delay_ms, got "
                f"{sc.delay_ms}; use NetSimEnv for fractional delays"
            )
        self.scenarios[e] = sc
        self.sc[e] = self._sched_params(sc.uplink) + self._sched_params(sc.downlink or sc.uplink)
        c = self.cfg[e]
        c[fast.C_DUP] = c[fast.C_DDN] = sc.delay_ms
        c[fast.C_LUP], c[fast.C_LDN] = sc.loss_up, sc.loss_down
        c[fast.C_MSS], c[fast.C_ACKSZ] = self.mss, 64
        c[fast.C_ACKEV], c[fast.C_ACKTM] = self.ack_every, self.ack_timer_ms
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
        # drawn exactly as NetSimEnv draws its engine seed, so equal seeds give equal losses
        self.ist[e, fast.I_RNG] = int(rng.integers(2**31))
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
        self.hist_a[e] = 0
        self.hist_c[e] = self.init_cwnd * self.mss / 1000.0
        self.t_obs[e] = 0.0
        self.skipped[e] = 0
        self.capacity_mbps[e] = sc.capacity_mbps
        self.bdp_packets[e] = sc.bdp_packets(self.mss)
        self.base_rtt_ms[e] = sc.base_rtt_ms
        self._keys[e] = path_key(sc.name, sc.tags)
        if self.privileged:
            self._priv[e] = privileged_features(sc)
        # the flow starts at t = 0 with its initial window, as the event engine's flow start
        only = np.zeros(self.num_envs, dtype=bool)
        only[e] = True
        fast.kick(self.int_state, self.float_state, self._tab, only)

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            seeds = (
                seed
                if isinstance(seed, (list, tuple))
                else [seed + i for i in range(self.num_envs)]
            )
            self._rngs = [np.random.default_rng(s) for s in seeds]
            self._delay_rng = np.random.default_rng([int(seeds[0]), 0x5EED])
        spec = (options or {}).get("scenario")
        mask = np.ones(self.num_envs, dtype=bool)
        for e in range(self.num_envs):
            self._reset_env(e, spec if spec is not None else self._specs[e])
        self._needs_reset[:] = False
        obs, _, _ = self._advance(mask)
        return obs, self._info()

    def reset_envs(self, mask: np.ndarray) -> np.ndarray:
        """Reset the masked envs now and return their first observations.

        This gives batched callers same-step autoreset: after a step that ended some episodes,
        they take the new episodes' observations immediately instead of spending one ignored
        action on the Gymnasium NEXT_STEP reset. Rows outside ``mask`` are not meaningful in the
        returned array; the masked envs then step normally on the next :meth:`step`.
        """
        mask = np.asarray(mask, dtype=bool).reshape(self.num_envs)
        for e in np.flatnonzero(mask):
            self._reset_env(int(e), self._specs[e])
        self.t_obs[mask] = 0.0
        self._needs_reset[mask] = False
        obs, _, _ = self._advance(mask)
        return obs

    # ------------------------------------------------------------------ stepping
    def _run(self, target: np.ndarray, mask: np.ndarray) -> None:
        fast.run_until(
            self.int_state,
            self.float_state,
            self._tab,
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

    def _advance(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Window by window from ``t_obs`` until every masked env emits an observation."""
        pending = mask.copy()
        b = self.t_obs.copy()
        last = np.zeros(self.num_envs, dtype=bool)
        obs_out = np.zeros_like(self.out)
        rew_out = np.zeros(self.num_envs)
        while pending.any():
            b = np.where(pending, np.minimum(b + self.window_ms, self.duration_ms), b)
            self._run(b, pending)
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
                self.coeffs,
                self.max_delay,
                self.reward_spec.kind == "log",
                pending,
                self._feat_tmp,
                self._feat_acc,
            )
            self.ist[pending, fast.I_NEV] = 0
            is_last = pending & (b >= self.duration_ms)
            done = pending & ((self.nvalid > 0) | is_last)
            obs_out[done] = self.out[done]
            if self.reward_spec.engine_native:
                rew_out[done] = self.rew[done]
            else:
                rew_out[done] = window_rewards(
                    self.out[done],
                    self.reward_spec,
                    self.capacity_mbps[done],
                    self.base_rtt_ms[done],
                    self.mss,
                )
            last |= is_last & done
            pending &= ~done
        self.t_obs = np.where(mask, b, self.t_obs)
        return self._obs(obs_out), rew_out, last

    def _obs(self, summary: np.ndarray) -> np.ndarray:
        B, H, A = self.num_envs, self.history_size, self.n_actions
        hist = np.zeros((B, H, A + 1))
        if H:
            hist[np.arange(B)[:, None], np.arange(H)[None, :], self.hist_a] = 1.0
            hist[:, :, A] = self.hist_c
        parts = [summary, hist.reshape(B, -1)]
        if self.privileged:
            parts.append(self._priv)
        return np.concatenate(parts, axis=1).astype(np.float32)

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        a = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)
        if ((a < 0) | (a >= self.n_actions)).any():
            raise ConfigError(f"actions {a.tolist()} out of range; valid: 0..{self.n_actions - 1}")
        resetting = self._needs_reset.copy()
        act = ~resetting
        for e in np.flatnonzero(resetting):
            self._reset_env(int(e), self._specs[e])
        # while the actions are in flight the simulator runs on; windows closing before they
        # land are dropped (events discarded), as mvfst-rl's try_to_lock skip
        delay = self.action_delay_ms
        if delay is None:
            delay = np.rint(self.action_delay.sample(self._delay_rng, self.num_envs))
        t_apply = np.minimum(self.t_obs + delay, self.duration_ms)
        b = self.t_obs + self.window_ms
        drop = act & (b < t_apply) & (b < self.duration_ms)
        while drop.any():
            self._run(b, drop)
            self.ist[drop, fast.I_NEV] = 0
            self.skipped[drop] += 1
            b = np.where(drop, b + self.window_ms, b)
            drop &= (b < t_apply) & (b < self.duration_ms)
        self._run(t_apply, act)
        cw = self.fst[:, fast.F_CWND]
        for i, (op, v) in enumerate(self.action_table):
            m = act & (a == i)
            if op == "/":
                cw[m] /= v
            elif op == "*":
                cw[m] *= v
            elif op == "+":
                cw[m] += v
            elif op == "-":
                cw[m] -= v
        np.clip(cw, self.min_cwnd, self.max_cwnd, out=cw)
        if self.history_size:
            self.hist_a[act, :-1] = self.hist_a[act, 1:]
            self.hist_c[act, :-1] = self.hist_c[act, 1:]
            self.hist_a[act, -1] = a[act]
            self.hist_c[act, -1] = cw[act] * self.mss / 1000.0
        fast.kick(self.int_state, self.float_state, self._tab, act)
        self.t_obs = np.where(act, b - self.window_ms, self.t_obs)
        self.t_obs[resetting] = 0.0
        obs, rew, last = self._advance(np.ones(self.num_envs, dtype=bool))
        if self._reward_norm is not None and act.any():
            idx = np.flatnonzero(act)
            rew[idx] = self._reward_norm([self._keys[i] for i in idx], rew[idx])
        rew[resetting] = 0.0
        trunc = last & act
        if self.curriculum is not None:
            for e in np.flatnonzero(trunc):
                m = self.episode_metrics(int(e))
                self.curriculum.record(
                    self._keys[e],
                    m["throughput_mbps"] / max(self.capacity_mbps[e], 1e-9),
                    m.get("delay_p95_ms", 0.0),
                    self.base_rtt_ms[e] / 2.0,
                )
        self._needs_reset = trunc.copy()
        return obs, rew, np.zeros(self.num_envs, dtype=bool), trunc, self._info()

    def _info(self) -> dict[str, Any]:
        return {
            "time_ms": self.t_obs.copy(),
            "cwnd": self.fst[:, fast.F_CWND].copy(),
            "skipped_windows": self.skipped.copy(),
            "capacity_mbps": self.capacity_mbps.copy(),
            "bdp_packets": self.bdp_packets.copy(),
        }

    # ------------------------------------------------------------------ metrics
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
