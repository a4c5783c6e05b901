"""The RL congestion-control problem as mvfst-rl defines it, as Gymnasium environments.

* :class:`NetSimEnv` - one flow on one scenario; each ``step`` is one 100 ms window.
  ``action_delay_ms = 0`` is the synchronous (Gym) view: simulated time waits for the action.
  ``action_delay_ms = Delta > 0`` is mvfst-rl's asynchronous view: the simulator runs on with the
  old cwnd for Delta ms before the action lands, and windows that close while the action is
  still pending are *dropped* (their ACK events are consumed and no observation is emitted).
* :func:`make_vector_env` - a synchronous vector of them with autoreset.

Observation (float32): 5 stats x 20 fields (or 5 x 7 compact) + history x (n_actions + 1).
Windows without ACK/loss events emit nothing (folded into the next, as mvfst-rl does), except
the last window of an episode, which always emits (zeros if empty) with ``truncated=True``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from rlfleet.envs.netsim.cc.base import External
from rlfleet.envs.netsim.cc.registry import make_controller
from rlfleet.envs.netsim.delays import parse_action_delay
from rlfleet.envs.netsim.engine import Network
from rlfleet.envs.netsim.features import (
    COMPACT_FIELDS,
    FIELDS,
    History,
    StateBuilder,
    apply_action,
    parse_actions,
    reward,
    summarise,
)
from rlfleet.envs.netsim.flow import Flow
from rlfleet.envs.netsim.privileged import N_PRIVILEGED, privileged_features
from rlfleet.envs.netsim.receivers import receiver_profile
from rlfleet.envs.netsim.rewards import RewardSpec, path_key, window_rewards
from rlfleet.envs.netsim.scenarios.registry import get_scenario
from rlfleet.envs.netsim.scenarios.samplers import SAMPLERS, sample_scenario
from rlfleet.envs.netsim.scenarios.spec import Scenario, build_network
from rlfleet.errors import ConfigError

DEFAULT_ACTIONS = "0,/2,-10,+10,*2"


class NetSimEnv(gym.Env):
    """mvfst-rl congestion control on the netsim engine.

    Args:
        scenario: a Pantheon scenario name/number, a sampler name (a new scenario every episode)
            or a :class:`Scenario`.
        duration_s: episode length in simulated seconds (Pantheon runs 30 s).
        window_ms: observation window (mvfst-rl ``cc_env_time_window_ms``).
        action_delay_ms: Delta in ms (0 = synchronous), or a distribution drawn per action
            (``"uniform:5,90"``, ``"lognormal:20,0.6,90"``, ``"empirical:FILE"``; see
            :mod:`.delays`).
        history: number of past actions in the observation (20 in mvfst-rl training).
        actions: mvfst-rl action string.
        compact: 7-field observation instead of 20.
        reward_kind: ``log`` (mvfst-rl main), ``linear`` (paper era), ``aurora`` or ``orca``.
        reward_coeffs: (throughput, delay, loss) factors of ``log`` / ``linear``.
        loss_penalty: subtract this times the window's loss rate.
        reward_norm: ``none``, ``capacity`` (throughput / capacity, delay / base RTT) or
            ``running`` (per-path running mean / std); formulas in :mod:`.rewards`.
        reward_norm_coeff: EMA coefficient of ``running``.
        privileged: append the path's ground truth (:mod:`.privileged`) to the observation,
            for a critic that sees it (``model.critic_inputs``).
        max_delay: reward uses the window max of the delay (else the mean).
        mss: packet size in bytes (mvfst: 1252).
        init_cwnd, min_cwnd, max_cwnd: in packets (mvfst: 10, 2, 2000).
        receiver: ``pantheon`` (ACK every 2, kernel TCP) or ``mvfst`` (ACK every 10, srtt/4
            timer, 5/4 RTT time threshold, 50 ms initial RTT); see :mod:`.receivers`.
        ack_every: receiver ACK frequency (default: the receiver profile's).
        competing: classic schemes (e.g. ``["cubic"]``) of extra flows sharing the bottleneck.
        competing_start_s: start time of those flows.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        scenario: str | Scenario = "aws_korea_to_china",
        *,
        duration_s: float = 30.0,
        window_ms: float = 100.0,
        action_delay_ms: float | str = 0.0,
        history: int = 20,
        actions: str = DEFAULT_ACTIONS,
        compact: bool = False,
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
        receiver: str = "pantheon",
        competing: list[str] | tuple[str, ...] = (),
        competing_start_s: float = 0.0,
    ) -> None:
        if not window_ms > 0 or not duration_s * 1000 >= window_ms:
            raise ConfigError(
                f"need window_ms > 0 and duration_s*1000 >= window_ms, got {window_ms}, {duration_s}"
            )
        self.action_delay = parse_action_delay(action_delay_ms)
        self.receiver = receiver_profile(receiver, ack_every)
        self.reward_spec = RewardSpec.of(
            reward_kind, reward_coeffs, max_delay, loss_penalty, reward_norm, reward_norm_coeff
        )
        if compact and not self.reward_spec.engine_native:
            raise ConfigError(
                "compact observations support reward_kind log / linear without loss_penalty or "
                f"capacity normalisation; got {self.reward_spec}"
            )
        self._reward_norm = self.reward_spec.running_norm()
        self.privileged = bool(privileged)
        if curriculum:
            raise ConfigError(
                "curriculum = true runs on the compiled engine (NetSimVectorEnv, what training "
                "uses); it is not available with the options that need the event engine"
            )
        if history < 0:
            raise ConfigError(f"history must be >= 0, got {history}")
        self._scenario_spec = scenario
        self._validate_scenario(scenario)
        self.duration_ms = float(duration_s) * 1000.0
        self.window_ms = float(window_ms)
        # the constant Delta, or None when it is drawn per action
        self.action_delay_ms = self.action_delay.fixed
        self.action_table = parse_actions(actions)
        self.compact = bool(compact)
        self.reward_kind = reward_kind
        self.reward_coeffs = tuple(float(c) for c in reward_coeffs)
        self.max_delay = bool(max_delay)
        self.mss = int(mss)
        self.init_cwnd = float(init_cwnd)
        self.min_cwnd = float(min_cwnd)
        self.max_cwnd = float(max_cwnd)
        self.ack_every = self.receiver["ack_every"]
        self.competing = tuple(competing)
        for s in self.competing:
            make_controller(s)  # validate names now
        self.competing_start_ms = float(competing_start_s) * 1000.0
        n_fields = len(COMPACT_FIELDS) if compact else len(FIELDS)
        self.n_actions = len(self.action_table)
        self.history_size = int(history)
        self.obs_len = 5 * n_fields + self.history_size * (self.n_actions + 1)
        self.obs_len += N_PRIVILEGED if self.privileged else 0
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.obs_len,), np.float32)
        self.action_space = gym.spaces.Discrete(self.n_actions)
        self._builder = StateBuilder(self.mss, self.compact)
        self._history = History(self.history_size, self.n_actions, self._kb(self.init_cwnd))
        self.net: Network | None = None
        self.flow: Flow | None = None
        self.scenario: Scenario | None = None
        self._t = 0.0  # time of the last emitted observation
        self.skipped_windows = 0
        self.emitted = 0

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _validate_scenario(spec: str | Scenario) -> None:
        if isinstance(spec, Scenario) or spec in SAMPLERS:
            return
        get_scenario(spec)

    def _kb(self, cwnd_pkts: float) -> float:
        return cwnd_pkts * self.mss / 1000.0

    def _pick_scenario(self, spec: str | Scenario) -> Scenario:
        if isinstance(spec, Scenario):
            return spec
        if spec in SAMPLERS:
            return sample_scenario(spec, self.np_random)
        return get_scenario(spec)

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        spec = (options or {}).get("scenario", self._scenario_spec)
        self.scenario = self._pick_scenario(spec)
        net_seed = int(self.np_random.integers(2**31))
        self.net = build_network(self.scenario, net_seed)
        self.flow = self.net.add_flow(
            External(),
            mss=self.mss,
            init_cwnd=self.init_cwnd,
            min_cwnd=self.min_cwnd,
            max_cwnd=self.max_cwnd,
            **self.receiver,
        )
        self.flow.recorder = []
        for i, scheme in enumerate(self.competing):
            self.net.add_flow(
                make_controller(scheme, net_seed + i + 1),
                mss=1500,
                start_ms=self.competing_start_ms,
            )
        self._builder.reset()
        self._history.reset(self._kb(self.init_cwnd))
        self._t = 0.0
        self.skipped_windows = 0
        self.emitted = 0
        self._action_in_force = -1
        self._applied_at = 0.0
        obs, _, _, info = self._advance(self._t)
        return obs, info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.net is None:
            raise ConfigError("call reset() before step()")
        a = int(action)
        if not 0 <= a < self.n_actions:
            raise ConfigError(f"action {action!r} out of range; valid: 0..{self.n_actions - 1}")
        delay = self.action_delay_ms
        if delay is None:
            delay = float(self.action_delay.sample(self.np_random, 1)[0])
        t_apply = min(self._t + delay, self.duration_ms)
        # while the action is in flight the simulator keeps going with the old cwnd; windows
        # closing before it lands are dropped, as mvfst-rl's try_to_lock skip does
        b = self._t + self.window_ms
        while b < t_apply and b < self.duration_ms:
            self.net.run_until(b)
            self.flow.recorder.clear()
            self.skipped_windows += 1
            b += self.window_ms
        self.net.run_until(t_apply)
        f = self.flow
        f.cwnd = apply_action(f.cwnd, self.action_table[a], self.min_cwnd, self.max_cwnd)
        self._history.push(a, self._kb(f.cwnd))
        self._action_in_force = a
        self._applied_at = t_apply
        self.net.kick(f)
        obs, r, truncated, info = self._advance(b - self.window_ms)
        if self._reward_norm is not None and info["n_events"]:
            key = path_key(self.scenario.name, self.scenario.tags)
            r = float(self._reward_norm([key], np.array([r]))[0])
        return obs, r, False, truncated, info

    def _advance(self, t_from: float) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        """Run window by window from boundary ``t_from`` until a window yields an observation."""
        net, f = self.net, self.flow
        b = t_from
        while True:
            b += self.window_ms
            last = b >= self.duration_ms
            if last:
                b = self.duration_ms
            net.run_until(b)
            if f.recorder or last:
                states = self._builder.states(f.recorder)
                f.recorder.clear()
                if len(states) or last:
                    break
        self._t = b
        self.emitted += 1
        summary = summarise(states, self.compact)
        parts = [summary, self._history.vector()]
        if self.privileged:
            parts.append(privileged_features(self.scenario))
        obs = np.concatenate(parts).astype(np.float32)
        if self.reward_spec.kind in ("log", "linear") and self.reward_spec.engine_native:
            r = reward(
                states,
                self.reward_kind,
                self.reward_coeffs,
                max_delay=self.max_delay,
                compact=self.compact,
            )
        else:
            sc = self.scenario
            r = window_rewards(
                summary[None], self.reward_spec, [sc.capacity_mbps], [sc.base_rtt_ms], self.mss
            )[0]
        return obs, float(r), last, self._info(states)

    def _info(self, states: np.ndarray) -> dict[str, Any]:
        sc, net, f = self.scenario, self.net, self.flow
        qp, qb = net.up.queue_at(net.now)
        bdp_pkts = sc.bdp_packets(self.mss)
        ti, di = (6, 2) if self.compact else (17, 5)
        return {
            "time_ms": float(net.now),
            "scenario": sc.name,
            "cwnd": f.cwnd,
            "capacity_mbps": sc.capacity_mbps,
            "queue_packets": qp,
            "queue_bytes": qb,
            "bdp_packets": bdp_pkts,
            "target_cwnd": bdp_pkts,
            "base_rtt_ms": sc.base_rtt_ms,
            "n_events": int(len(states)),
            "throughput_mbps": float(states[:, ti].mean()) * 8 / 1000 if len(states) else 0.0,
            "delay_ms": float(states[:, di].max()) * 100 if len(states) else 0.0,
            "skipped_windows": self.skipped_windows,
            "action_in_force": self._action_in_force,
            "action_applied_at_ms": self._applied_at,
            "sent_packets": f.sent_pkts,
            "lost_packets": f.lost_pkts,
        }


def make_vector_env(num_envs: int, **kwargs: Any) -> gym.vector.SyncVectorEnv:
    """A synchronous vector of :class:`NetSimEnv` (event engine) with autoreset.

    kwargs go to each env; ``scenario`` may be a list with one entry per env. For training
    throughput prefer :class:`rlfleet.envs.netsim.vector.NetSimVectorEnv` (compiled engine).
    """
    if num_envs < 1:
        raise ConfigError(f"num_envs must be >= 1, got {num_envs}")
    sc = kwargs.pop("scenario", "aws_korea_to_china")
    specs = list(sc) if isinstance(sc, (list, tuple)) else [sc] * num_envs
    if len(specs) != num_envs:
        raise ConfigError(f"got {len(specs)} scenarios for {num_envs} envs")

    def factory(spec: str | Scenario):
        return lambda: NetSimEnv(spec, **kwargs)

    return gym.vector.SyncVectorEnv([factory(s) for s in specs])
