"""What a scenario is: :class:`Trace` (a delivery schedule spec), :class:`Scenario` (one
bottleneck path: traces, queues, delay, loss) and :func:`build_network`, which turns one into an
engine. A scenario describes the path only; how many flows run and what they run is chosen by the
caller."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from rlfleet.envs.netsim.engine import Network
from rlfleet.envs.netsim.link import Link
from rlfleet.envs.netsim.schedule import (
    OPPORTUNITY_BYTES,
    ConstantSchedule,
    Schedule,
    TableSchedule,
    poisson_times,
    read_trace,
    scale_times,
)
from rlfleet.errors import ConfigError

#: The schedule kinds a :class:`Trace` accepts.
TRACE_KINDS = ("constant", "poisson", "trace")


@dataclass(frozen=True)
class Trace:
    """A delivery schedule: ``constant`` (rate_mbps), ``poisson`` (rate_mbps, warmup_ms, seed,
    duration_ms) or ``trace`` (mahimahi timestamps, given inline as ``times`` or by ``path``)."""

    kind: str
    rate_mbps: float = 0.0
    warmup_ms: int = 0
    seed: int = 0
    duration_ms: int = 60_000
    times: tuple[int, ...] = ()
    path: str = ""
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in TRACE_KINDS:
            raise ConfigError(f"unknown trace kind {self.kind!r}; valid: {', '.join(TRACE_KINDS)}")
        if self.kind in ("constant", "poisson") and not self.rate_mbps > 0:
            raise ConfigError(f"{self.kind} trace needs rate_mbps > 0, got {self.rate_mbps!r}")
        if self.kind == "trace" and not (self.times or self.path):
            raise ConfigError("a 'trace' schedule needs 'times' (list of ms) or 'path' (file)")
        if not self.scale > 0:
            raise ConfigError(f"trace scale must be > 0, got {self.scale!r}")

    def label(self) -> str:
        if self.kind == "constant":
            return f"{self.rate_mbps * self.scale:g}mbps"
        if self.kind == "poisson":
            return f"{self.rate_mbps * self.scale:g}mbps-poisson"
        return Path(self.path).name if self.path else f"trace[{len(self.times)}]"


@functools.lru_cache(maxsize=64)
def build_schedule(tr: Trace) -> Schedule:
    """Schedule for a trace spec (cached: Poisson and file traces are built once)."""
    if tr.kind == "constant":
        return ConstantSchedule(tr.rate_mbps * tr.scale)
    if tr.kind == "poisson":
        return TableSchedule(
            poisson_times(
                tr.rate_mbps * tr.scale,
                duration_ms=tr.duration_ms,
                warmup_ms=tr.warmup_ms,
                seed=tr.seed,
            )
        )
    times = list(tr.times) if tr.times else read_trace(tr.path)
    if tr.scale != 1.0:
        times = scale_times(times, tr.scale)
    return TableSchedule(times)


@dataclass(frozen=True)
class Scenario:
    """One bottleneck path. Queue limits of ``None`` mean unbounded (mahimahi's default)."""

    name: str
    uplink: Trace
    downlink: Trace | None = None  # None: same schedule as the uplink
    delay_ms: float = 0.0  # one-way, applied in each direction
    loss_up: float = 0.0
    loss_down: float = 0.0
    up_queue_packets: int | None = None
    up_queue_bytes: int | None = None
    down_queue_packets: int | None = None
    down_queue_bytes: int | None = None
    description: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not (self.delay_ms >= 0 and math.isfinite(self.delay_ms)):
            raise ConfigError(
                f"scenario {self.name!r}: delay_ms must be >= 0, got {self.delay_ms!r}"
            )
        for k in ("loss_up", "loss_down"):
            v = getattr(self, k)
            if not 0 <= v < 1:
                raise ConfigError(f"scenario {self.name!r}: {k} must be in [0, 1), got {v!r}")

    @property
    def capacity_mbps(self) -> float:
        """Mean uplink capacity in Mbit/s of wire bytes (1504 B per opportunity)."""
        return build_schedule(self.uplink).mean_mbps

    @property
    def base_rtt_ms(self) -> float:
        return 2.0 * self.delay_ms

    def bdp_packets(self, mss: int = 1500) -> float:
        """Bandwidth-delay product in packets of ``mss`` bytes."""
        opp = build_schedule(self.uplink).opportunities_per_ms
        return opp * OPPORTUNITY_BYTES / mss * self.base_rtt_ms

    def scaled(self, factor: float) -> Scenario:
        """Bandwidth scaled by ``factor`` with queues scaled alongside (same queue/BDP ratio)."""

        def q(v: int | None) -> int | None:
            return None if v is None else max(1, int(round(v * factor)))

        return replace(
            self,
            name=f"{self.name}@x{factor:g}",
            uplink=replace(self.uplink, scale=self.uplink.scale * factor),
            downlink=None
            if self.downlink is None
            else replace(self.downlink, scale=self.downlink.scale * factor),
            up_queue_packets=q(self.up_queue_packets),
            up_queue_bytes=q(self.up_queue_bytes),
        )


def build_network(sc: Scenario, seed: int = 0) -> Network:
    """A fresh engine for ``sc``; ``seed`` drives the IID loss draws."""
    up_s = build_schedule(sc.uplink)
    down_s = up_s if sc.downlink is None else build_schedule(sc.downlink)
    return Network(
        Link(up_s, sc.up_queue_packets, sc.up_queue_bytes),
        Link(down_s, sc.down_queue_packets, sc.down_queue_bytes),
        delay_up_ms=sc.delay_ms,
        delay_down_ms=sc.delay_ms,
        loss_up=sc.loss_up,
        loss_down=sc.loss_down,
        seed=seed,
    )
