"""``NetSimVectorEnv``: many single-flow RL envs on the compiled tick engine (:mod:`.fast`).

Same problem, spaces, action/delay semantics and reward as :class:`.env.NetSimEnv` (full
220-float observation), built for training throughput: one numba call advances every env.
Autoreset follows Gymnasium's default NEXT_STEP mode (the step after an episode ends returns
the first observation of the next one, reward 0, and ignores that action).

Limits (checked, with a clear error): integer one-way delays, whole-ms action delays, one flow
per env, no compact observation, no competing flows. Use :class:`.env.NetSimEnv` for those.

The engine's packed state and what is done to it are :class:`.vector_engine.EngineBatch`; this
module is the Gymnasium side: scenarios per reset, actions in flight, observations and rewards.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import batch_space

from rlfleet.envs.netsim.curriculum import Curriculum
from rlfleet.envs.netsim.delays import parse_action_delay
from rlfleet.envs.netsim.env import DEFAULT_ACTIONS
from rlfleet.envs.netsim.features import apply_actions, parse_actions
from rlfleet.envs.netsim.privileged import N_PRIVILEGED, privileged_features
from rlfleet.envs.netsim.receivers import receiver_profile
from rlfleet.envs.netsim.rewards import RewardSpec, path_key, window_rewards
from rlfleet.envs.netsim.scenarios.registry import get_scenario
from rlfleet.envs.netsim.scenarios.samplers import SAMPLER_PARAMS, SAMPLERS, sample_scenario
from rlfleet.envs.netsim.scenarios.spec import Scenario
from rlfleet.envs.netsim.vector_engine import EngineBatch, check_engine_limits
from rlfleet.errors import ConfigError


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
        self.reward_spec = RewardSpec.of(
            reward_kind, reward_coeffs, max_delay, loss_penalty, reward_norm, reward_norm_coeff
        )
        self._reward_norm = self.reward_spec.running_norm()
        self.privileged = bool(privileged)
        self.action_delay = parse_action_delay(action_delay_ms)
        fixed = self.action_delay.fixed
        check_engine_limits(window_ms, fixed, duration_s, (min_cwnd, init_cwnd, max_cwnd))
        self.receiver = receiver_profile(receiver, ack_every)
        if ack_timer_ms is not None:
            self.receiver["ack_timer_ms"] = float(ack_timer_ms)
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
        self.engine = EngineBatch(
            num_envs,
            mss=self.mss,
            init_cwnd=self.init_cwnd,
            min_cwnd=self.min_cwnd,
            max_cwnd=self.max_cwnd,
            receiver=self.receiver,
        )
        self._alloc()
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

    @property
    def scenarios(self) -> list[Scenario | None]:
        """Each env's current scenario (None before its first reset)."""
        return self.engine.scenarios

    @property
    def owd(self) -> np.ndarray:
        """Each env's one-way-delay histogram of this episode, ``[B, OWD_BINS]`` (1 ms bins)."""
        return self.engine.owd

    def _alloc(self) -> None:
        B = self.num_envs
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
        # drawn exactly as NetSimEnv draws its engine seed, so equal seeds give equal losses
        self.engine.load(e, sc, int(rng.integers(2**31)))
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
    def _advance(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Window by window from ``t_obs`` until every masked env emits an observation."""
        engine = self.engine
        pending = mask.copy()
        b = self.t_obs.copy()
        last = np.zeros(self.num_envs, dtype=bool)
        obs_out = np.zeros_like(engine.out)
        rew_out = np.zeros(self.num_envs)
        while pending.any():
            b = np.where(pending, np.minimum(b + self.window_ms, self.duration_ms), b)
            engine.run(b, pending)
            engine.summarise(pending, self.coeffs, self.max_delay, self.reward_spec.kind == "log")
            is_last = pending & (b >= self.duration_ms)
            done = pending & ((engine.nvalid > 0) | is_last)
            obs_out[done] = engine.out[done]
            if self.reward_spec.engine_native:
                rew_out[done] = engine.rew[done]
            else:
                rew_out[done] = window_rewards(
                    engine.out[done],
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
            self.engine.run(b, drop)
            self.engine.discard_events(drop)
            self.skipped[drop] += 1
            b = np.where(drop, b + self.window_ms, b)
            drop &= (b < t_apply) & (b < self.duration_ms)
        self.engine.run(t_apply, act)
        cw = self.engine.cwnd
        apply_actions(cw, a, act, self.action_table, self.min_cwnd, self.max_cwnd)
        if self.history_size:
            self.hist_a[act, :-1] = self.hist_a[act, 1:]
            self.hist_c[act, :-1] = self.hist_c[act, 1:]
            self.hist_a[act, -1] = a[act]
            self.hist_c[act, -1] = cw[act] * self.mss / 1000.0
        self.engine.kick(act)
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
            "cwnd": self.engine.cwnd.copy(),
            "skipped_windows": self.skipped.copy(),
            "capacity_mbps": self.capacity_mbps.copy(),
            "bdp_packets": self.bdp_packets.copy(),
        }

    # ------------------------------------------------------------------ metrics
    def episode_metrics(self, e: int) -> dict[str, float]:
        """Delivered throughput (Mbit/s over the elapsed time), OWD mean/p95 (Pantheon rule)."""
        return self.engine.episode_metrics(e)
