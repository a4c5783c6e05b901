"""Scenarios: the 18 Pantheon emulators by name, mtenv-style random samplers, TOML files.

A :class:`Scenario` describes the path only (traces, queues, delay, loss); how many flows run and
what they run is chosen by the caller. ``build_network`` turns a scenario into an engine.
"""

from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

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

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_TRACE_KINDS = ("constant", "poisson", "trace")


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
        if self.kind not in _TRACE_KINDS:
            raise ConfigError(f"unknown trace kind {self.kind!r}; valid: {', '.join(_TRACE_KINDS)}")
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


# ---------------------------------------------------------------------------- the 18 Pantheon
def _const(r: float) -> Trace:
    return Trace("constant", rate_mbps=r)


def _poisson(r: float, warm_ms: int, seed: int) -> Trace:
    return Trace("poisson", rate_mbps=r, warmup_ms=warm_ms, seed=seed)


def _pantheon() -> dict[str, Scenario]:
    out: list[Scenario] = [
        Scenario(
            "nepal_to_aws_india",
            _poisson(0.57, 1000, 188),
            None,
            28,
            loss_up=0.0477,
            up_queue_packets=14,
            description="Calibrated: Nepal -> AWS India (Pantheon 188)",
            tags=("calibrated",),
        ),
        Scenario(
            "mexico_cellular_to_aws_california",
            _poisson(2.64, 5000, 196),
            None,
            88,
            up_queue_packets=130,
            description="Calibrated: Mexico cellular -> AWS California (196)",
            tags=("calibrated",),
        ),
        Scenario(
            "aws_brazil_to_colombia_cellular",
            _poisson(3.04, 4000, 339),
            None,
            130,
            up_queue_packets=426,
            description="Calibrated: AWS Brazil -> Colombia cellular (339)",
            tags=("calibrated",),
        ),
        Scenario(
            "india_to_aws_india",
            _const(100.42),
            None,
            27,
            up_queue_packets=173,
            description="Calibrated: India -> AWS India (251)",
            tags=("calibrated",),
        ),
        Scenario(
            "aws_korea_to_china",
            _const(77.72),
            None,
            51,
            loss_up=0.0006,
            up_queue_packets=94,
            description="Calibrated: AWS Korea -> China (361)",
            tags=("calibrated",),
        ),
        Scenario(
            "aws_california_to_mexico",
            _const(114.68),
            None,
            45,
            up_queue_packets=450,
            description="Calibrated: AWS California -> Mexico (353)",
            tags=("calibrated",),
        ),
    ]
    for rtt in (20, 100):
        for r in (12, 60, 108):
            out.append(
                Scenario(
                    f"policer_{r}mbps_{rtt}ms",
                    _const(r),
                    None,
                    rtt / 2,
                    up_queue_packets=1,
                    down_queue_packets=1,
                    description=f"Token-bucket policer, {r} Mbps, RTT {rtt} ms",
                    tags=("pathological", "policer"),
                )
            )
    out.append(
        Scenario(
            "ack_aggregation_100ms",
            _const(12),
            Trace("trace", times=(100,)),
            10,
            description="Severe ACK aggregation: 1 ACK opportunity every 100 ms",
            tags=("pathological", "ack_aggregation"),
        )
    )
    out.append(
        Scenario(
            "ack_aggregation_10_every_200ms",
            _const(12),
            Trace("trace", times=(200,) * 10),
            10,
            description="Severe ACK aggregation: 10 ACK opportunities every 200 ms",
            tags=("pathological", "ack_aggregation"),
        )
    )
    for label, qb in (
        ("bdp_div_10", 9000),
        ("bdp_div_3", 30000),
        ("bdp_div_2", 45000),
        ("bdp", 90000),
    ):
        out.append(
            Scenario(
                f"buffer_{label}",
                _const(12),
                None,
                30,
                up_queue_bytes=qb,
                description=f"12 Mbps, RTT 60 ms, bottleneck buffer {qb} bytes",
                tags=("pathological", "buffer"),
            )
        )
    return {s.name: s for s in out}


#: The 18 Pantheon scenarios in reference order (1-6 calibrated, 7-18 pathological).
PANTHEON: dict[str, Scenario] = _pantheon()
CALIBRATED: tuple[str, ...] = tuple(n for n, s in PANTHEON.items() if "calibrated" in s.tags)


def get_scenario(name: str) -> Scenario:
    """A Pantheon scenario by name (or 1-based number as a string)."""
    if name.isdigit() and 1 <= int(name) <= len(PANTHEON):
        return list(PANTHEON.values())[int(name) - 1]
    try:
        return PANTHEON[name]
    except KeyError:
        raise ConfigError(
            f"unknown scenario {name!r}; valid: {', '.join(PANTHEON)} (or 1-{len(PANTHEON)}), "
            f"samplers: {', '.join(SAMPLERS)}"
        ) from None


# ---------------------------------------------------------------------------- samplers (mtenv)
def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _sample(
    rng: np.random.Generator,
    traces: tuple[str, ...],
    delay: tuple[int, int],
    scale_range: tuple[float, float] | None,
    p_scale1: float,
    loss: tuple[float, float, float],
    queue: tuple[int, int],
    tag: str,
) -> Scenario:
    base = PANTHEON[traces[int(rng.integers(len(traces)))]]
    delay_ms = int(round(_log_uniform(rng, *delay)))
    scale = 1.0
    if scale_range is not None and rng.random() >= p_scale1:
        scale = _log_uniform(rng, *scale_range)
    p0, lo, hi = loss
    loss_up = 0.0 if rng.random() < p0 else _log_uniform(rng, lo, hi)
    q = int(round(_log_uniform(rng, *queue)))
    up = replace(base.uplink, scale=scale)
    return Scenario(
        f"{tag}:{base.name}:d{delay_ms}:x{scale:.3f}:l{loss_up:.4f}:q{q}",
        up,
        None,
        delay_ms,
        loss_up=loss_up,
        up_queue_packets=q,
        description=f"sampled by {tag} from {base.name}",
        tags=("sampled", tag),
    )


_CAL = (
    "nepal_to_aws_india",
    "mexico_cellular_to_aws_california",
    "aws_brazil_to_colombia_cellular",
    "india_to_aws_india",
    "aws_korea_to_china",
    "aws_california_to_mexico",
)
_HIGH = _CAL[3:]

#: Random scenario generators as in mvfst-rl's mtenv branch: name -> f(rng) -> Scenario.
SAMPLERS = {
    "random_traces_0_5": lambda rng: _sample(
        rng, _CAL, (5, 200), (0.5, 2.0), 0.1, (0.8, 0.01, 0.05), (10, 1000), "random_traces_0_5"
    ),
    "random_traces_0_5_narrow": lambda rng: _sample(
        rng,
        _CAL,
        (20, 150),
        (0.9, 1.1),
        0.0,
        (0.0, 0.01, 0.06),
        (10, 500),
        "random_traces_0_5_narrow",
    ),
    "random_traces_3_5": lambda rng: _sample(
        rng, _HIGH, (15, 100), None, 1.0, (1.0, 0.01, 0.05), (50, 1000), "random_traces_3_5"
    ),
    "random_traces_3_5_with_loss": lambda rng: _sample(
        rng,
        _HIGH,
        (15, 100),
        None,
        1.0,
        (0.5, 1e-4, 0.02),
        (50, 1000),
        "random_traces_3_5_with_loss",
    ),
}


def sample_scenario(sampler: str, rng: np.random.Generator) -> Scenario:
    """Draw one scenario from a named sampler."""
    try:
        fn = SAMPLERS[sampler]
    except KeyError:
        raise ConfigError(f"unknown sampler {sampler!r}; valid: {', '.join(SAMPLERS)}") from None
    return fn(rng)


# ---------------------------------------------------------------------------- TOML
_SC_KEYS = {"name", "description", "delay_ms", "loss_up", "loss_down", "uplink", "downlink"}
_LINK_KEYS = {
    "kind",
    "rate_mbps",
    "warmup_ms",
    "seed",
    "duration_ms",
    "times",
    "path",
    "scale",
    "queue_packets",
    "queue_bytes",
}


def _check_keys(d: dict[str, Any], valid: set[str], where: str) -> None:
    bad = sorted(set(d) - valid)
    if bad:
        raise ConfigError(f"{where}: unknown key(s) {bad}; valid: {sorted(valid)}")


def _link_from(d: dict[str, Any], where: str, base: Path) -> tuple[Trace, int | None, int | None]:
    if not isinstance(d, dict):
        raise ConfigError(f"{where} must be a table, got {type(d).__name__}")
    _check_keys(d, _LINK_KEYS, where)
    kw = {k: v for k, v in d.items() if k not in ("queue_packets", "queue_bytes")}
    if "times" in kw:
        kw["times"] = tuple(int(x) for x in kw["times"])
    if "path" in kw:
        p = Path(kw["path"])
        kw["path"] = str(p if p.is_absolute() else base / p)
    if "kind" not in kw:
        raise ConfigError(f"{where}: missing 'kind'; valid: {', '.join(_TRACE_KINDS)}")
    try:
        tr = Trace(**kw)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if tr.kind == "trace":
        build_schedule(tr)  # read and validate the file now, not mid-run
    qp, qb = d.get("queue_packets"), d.get("queue_bytes")
    for k, v in (("queue_packets", qp), ("queue_bytes", qb)):
        if v is not None and (not isinstance(v, int) or v < 0):
            raise ConfigError(f"{where}.{k} must be a non-negative integer, got {v!r}")
    return tr, qp, qb


def scenario_from_dict(
    d: dict[str, Any], base: Path | None = None, where: str = "scenario"
) -> Scenario:
    """Build a scenario from a parsed TOML table (see docs/netsim.md for the format)."""
    base = base or Path.cwd()
    _check_keys(d, _SC_KEYS, where)
    if "name" not in d or "uplink" not in d:
        raise ConfigError(f"{where}: 'name' and 'uplink' are required")
    up, uqp, uqb = _link_from(d["uplink"], f"{where}.uplink", base)
    down, dqp, dqb = None, None, None
    if "downlink" in d:
        down, dqp, dqb = _link_from(d["downlink"], f"{where}.downlink", base)
    return Scenario(
        str(d["name"]),
        up,
        down,
        float(d.get("delay_ms", 0.0)),
        loss_up=float(d.get("loss_up", 0.0)),
        loss_down=float(d.get("loss_down", 0.0)),
        up_queue_packets=uqp,
        up_queue_bytes=uqb,
        down_queue_packets=dqp,
        down_queue_bytes=dqb,
        description=str(d.get("description", "")),
        tags=("custom",),
    )


def load_scenarios(path: str | Path) -> list[Scenario]:
    """Scenarios from a TOML file holding ``[scenario]`` or ``[[scenario]]`` tables."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read scenario file {str(p)!r}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{str(p)!r} is not valid TOML: {exc}") from exc
    _check_keys(data, {"scenario"}, str(p))
    raw = data.get("scenario")
    if raw is None:
        raise ConfigError(f"{str(p)!r} holds no [scenario] or [[scenario]] table")
    items = raw if isinstance(raw, list) else [raw]
    return [
        scenario_from_dict(d, p.parent, f"{p.name}: scenario[{i}]") for i, d in enumerate(items)
    ]


def resolve_scenarios(names: list[str]) -> list[Scenario]:
    """Names, numbers, ``calibrated``/``all``, or TOML paths -> scenarios."""
    out: list[Scenario] = []
    for n in names:
        if n == "all":
            out.extend(PANTHEON.values())
        elif n == "calibrated":
            out.extend(PANTHEON[c] for c in CALIBRATED)
        elif n.endswith(".toml"):
            out.extend(load_scenarios(n))
        else:
            out.append(get_scenario(n))
    return out
