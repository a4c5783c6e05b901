"""Several flows on one bottleneck, any mix of learned policies and classic schemes: a learned
flow against Cubic, two learned flows sharing the path, ... (Pantheon's multi-flow runs start the
flows ``interval_s`` apart).

Each learned flow sees exactly what a :class:`.env.NetSimEnv` agent sees (its own mvfst-rl
window features and action history) and acts synchronously at every 100 ms window that has
ACK/loss events for it (empty windows are folded into the next, as mvfst-rl does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rlfleet.envs.netsim.cc.base import External
from rlfleet.envs.netsim.cc.registry import make_controller
from rlfleet.envs.netsim.engine import Network
from rlfleet.envs.netsim.features import (
    History,
    StateBuilder,
    apply_action,
    parse_actions,
    summarise,
)
from rlfleet.envs.netsim.flow import Flow
from rlfleet.envs.netsim.receivers import receiver_profile
from rlfleet.envs.netsim.scenarios.spec import Scenario, build_network
from rlfleet.errors import ConfigError

Policy = Callable[[np.ndarray], int]

#: NetSimEnv keyword arguments a learned flow here honours (its observation and transport)
FLOW_KWARGS = (
    "actions",
    "history",
    "mss",
    "init_cwnd",
    "min_cwnd",
    "max_cwnd",
    "receiver",
    "ack_every",
)


class _LearnedFlow:
    def __init__(self, flow: Flow, policy: Policy, kw: dict[str, Any]) -> None:
        self.flow, self.policy = flow, policy
        self.table = parse_actions(kw.get("actions", "0,/2,-10,+10,*2"))
        self.mss = flow.mss
        self.min_cwnd, self.max_cwnd = flow.min_cwnd, flow.max_cwnd
        self.builder = StateBuilder(self.mss)
        self.history = History(int(kw.get("history", 20)), len(self.table), self._kb(flow.cwnd))
        flow.recorder = []
        reset = getattr(policy, "reset", None)
        if callable(reset):
            reset()

    def _kb(self, cwnd: float) -> float:
        return cwnd * self.mss / 1000.0

    def window(self, net: Any) -> None:
        states = self.builder.states(self.flow.recorder)
        self.flow.recorder.clear()
        if not len(states):
            return
        obs = np.concatenate([summarise(states), self.history.vector()]).astype(np.float32)
        a = int(self.policy(obs))
        f = self.flow
        f.cwnd = apply_action(f.cwnd, self.table[a], self.min_cwnd, self.max_cwnd)
        self.history.push(a, self._kb(f.cwnd))
        net.kick(f)


def run_mixed(
    sc: Scenario,
    members: Sequence[str | Policy],
    *,
    duration_s: float = 30.0,
    seed: int = 0,
    interval_s: float = 10.0,
    window_ms: float = 100.0,
    env_kwargs: dict[str, Any] | None = None,
) -> Network:
    """Run one flow per member (a classic scheme name or a policy), flow i starting at
    ``i * interval_s``; returns the finished network (measured by
    :func:`.evaluate.run_shared`)."""
    if not members:
        raise ConfigError("run_mixed needs at least one flow")
    kw = {k: v for k, v in (env_kwargs or {}).items() if k in FLOW_KWARGS}
    rx = receiver_profile(kw.get("receiver", "pantheon"), kw.get("ack_every"))
    net = build_network(sc, seed)
    learned: list[_LearnedFlow] = []
    for i, m in enumerate(members):
        start = i * interval_s * 1000.0
        if isinstance(m, str):
            net.add_flow(make_controller(m, seed * 1000 + i), start_ms=start, mss=1500)
            continue
        f = net.add_flow(
            External(),
            start_ms=start,
            mss=int(kw.get("mss", 1252)),
            init_cwnd=float(kw.get("init_cwnd", 10.0)),
            min_cwnd=float(kw.get("min_cwnd", 2.0)),
            max_cwnd=float(kw.get("max_cwnd", 2000.0)),
            **rx,
        )
        learned.append(_LearnedFlow(f, m, kw))
    t, end = 0.0, duration_s * 1000.0
    while t < end:
        t = min(t + window_ms, end)
        net.run_until(t)
        for lf in learned:
            lf.window(net)
    return net
