"""Scenarios from TOML files (see docs/netsim.md for the format): ``[scenario]`` or
``[[scenario]]`` tables, each checked key by key with a message that names the table."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rlfleet.envs.netsim.scenarios.spec import TRACE_KINDS, Scenario, Trace, build_schedule
from rlfleet.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

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
        raise ConfigError(f"{where}: missing 'kind'; valid: {', '.join(TRACE_KINDS)}")
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
