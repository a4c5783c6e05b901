"""Typed configuration: dataclass sections, TOML presets, ``--set section.key=value`` overrides.

A run's configuration is a dataclass whose fields are *sections* (dataclasses themselves) whose
fields are scalars or tuples of scalars. Every field carries a ``doc`` in its metadata, so the
valid keys can be listed with their meaning. Unknown or ill-typed keys raise :class:`ConfigError`
naming the bad key and the valid ones.

This module is deliberately generic and knows no algorithm: the runtime declares the sections.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from rlfleet.errors import ConfigError

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

T = TypeVar("T")


def field(
    default: Any,
    doc: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> Any:
    """A documented config field (dict defaults are copied per instance). Numeric fields (and
    each number of a tuple field) declare their valid range with ``ge`` / ``gt`` / ``le`` /
    ``lt``; every float must also be finite. Values outside are refused naming the range."""
    bounds = {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)) if v is not None}
    metadata = {"doc": doc, "range": bounds}
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


_SYMBOLS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


def describe_range(bounds: Mapping[str, float]) -> str:
    """``{"ge": 0, "le": 1}`` -> ``"in [0, 1]"``; ``{"gt": 0}`` -> ``"> 0"``."""
    low = [(k, v) for k, v in bounds.items() if k in ("ge", "gt")]
    high = [(k, v) for k, v in bounds.items() if k in ("le", "lt")]
    if low and high:
        (lk, lv), (hk, hv) = low[0], high[0]
        return f"in {'[' if lk == 'ge' else '('}{lv:g}, {hv:g}{']' if hk == 'le' else ')'}"
    return " and ".join(f"{_SYMBOLS[k]} {v:g}" for k, v in bounds.items())


def _in_range(value: float, bounds: Mapping[str, float]) -> bool:
    checks = {
        "ge": lambda b: value >= b,
        "gt": lambda b: value > b,
        "le": lambda b: value <= b,
        "lt": lambda b: value < b,
    }
    return all(checks[k](b) for k, b in bounds.items())


def _check_range(value: Any, bounds: Mapping[str, float], where: str) -> None:
    numbers = value if isinstance(value, tuple) else (value,)
    for number in numbers:
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            if not _in_range(number, bounds):
                shown = list(value) if isinstance(value, tuple) else value
                raise ConfigError(f"{where} must be {describe_range(bounds)}, got {shown!r}")


def _suggest(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"{hint} Valid: {', '.join(sorted(valid))}."


def _resolved_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check (and minimally coerce) ``value`` against a field's type hint."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: {value!r} does not fit {hint}")
    if origin is dict:
        # a flat table of scalars or lists of scalars (e.g. an environment's keyword arguments)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table like {{key = value}}, got {value!r}")
        scalars = (str, int, float, bool)
        for key, item in value.items():
            ok = isinstance(item, scalars) or (
                isinstance(item, (list, tuple)) and all(isinstance(v, scalars) for v in item)
            )
            if not isinstance(key, str) or not ok:
                raise ConfigError(
                    f"{where}: entry {key!r} = {item!r} must be a string, number, bool "
                    "or a list of those"
                )
        return {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        item = args[0] if args else Any
        return tuple(_coerce(v, item, where) for v in value)
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):  # TOML spells nan and inf; no setting means either
                raise ConfigError(f"{where}: expected a finite number, got {value!r}")
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    raise ConfigError(f"{where}: unsupported config type {hint}")


def _check_section_values(section: Any, name: str) -> None:
    hints = _resolved_hints(type(section))
    for f in dataclasses.fields(section):
        where = f"{name}.{f.name}"
        value = _coerce(getattr(section, f.name), hints[f.name], where)
        _check_range(value, f.metadata.get("range", {}), where)
        setattr(section, f.name, value)
    validate = getattr(section, "validate", None)
    if validate is not None:
        validate()


def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    """Build config ``cls`` from nested mappings ``{section: {key: value}}``, strictly."""
    sections = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = _resolved_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, values in data.items():
        if name not in sections:
            raise ConfigError(f"unknown config section {name!r}.{_suggest(name, list(sections))}")
        if not isinstance(values, Mapping):
            raise ConfigError(f"config section {name!r} must be a table, got {values!r}")
        section_cls = hints[name]
        keys = {f.name for f in dataclasses.fields(section_cls)}
        for key in values:
            if key not in keys:
                raise ConfigError(
                    f"unknown config key {name}.{key}.{_suggest(key, [f'{k}' for k in keys])}"
                )
        kwargs[name] = section_cls(**dict(values))
    config = cls(**kwargs)
    for name in sections:
        _check_section_values(getattr(config, name), name)
    validate = getattr(config, "validate", None)
    if validate is not None:  # checks that span sections
        validate()
    return config


def to_dict(config: Any) -> dict[str, dict[str, Any]]:
    """Plain nested dict of a config (tuples become lists), suitable for TOML/JSON."""
    out: dict[str, dict[str, Any]] = {}
    for f in dataclasses.fields(config):
        section = getattr(config, f.name)
        out[f.name] = {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(section).items()
        }
    return out


def parse_override(text: str) -> tuple[str, str, Any]:
    """Parse ``section.key=value``; the value is read as a TOML value, else as a bare string."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    path, raw = text.split("=", 1)
    section, key = path.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return section, key, value


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Two-level merge of ``{section: {key: value}}`` mappings (overrides win)."""
    merged: dict[str, Any] = {k: dict(v) for k, v in base.items()}
    for section, values in overrides.items():
        merged.setdefault(section, {})
        if isinstance(values, Mapping):
            merged[section].update(values)
        else:
            merged[section] = values
    return merged


def apply_overrides(data: Mapping[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``--set`` strings to nested mappings."""
    result = merge(data, {})
    for text in overrides:
        section, key, value = parse_override(text)
        result.setdefault(section, {})[key] = value
    return result


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file into nested dicts, with a clear error on bad syntax."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if value is None:
        raise ConfigError("TOML cannot represent None; give the field a concrete value")
    raise ConfigError(f"cannot write {value!r} to TOML")


def dumps_toml(data: Mapping[str, Mapping[str, Any]]) -> str:
    """Write ``{section: {key: scalar-or-list}}`` as TOML (None values are omitted)."""
    lines: list[str] = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            if value is not None:
                lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def describe(cls: type) -> str:
    """Human-readable listing of every section.key with its default and doc.

    Defaults are read from a default-constructed ``cls``, so a config that sets a shared
    section's value (e.g. ``run.algorithm``) and table defaults show what a run really gets.
    """
    hints = _resolved_hints(cls)
    defaults = cls()
    lines = []
    for f in dataclasses.fields(cls):
        section_cls = hints[f.name]
        section = getattr(defaults, f.name)
        lines.append(f"[{f.name}]")
        for sf in dataclasses.fields(section_cls):
            value = getattr(section, sf.name)
            bounds = sf.metadata.get("range") or {}
            valid = f" (valid: {describe_range(bounds)})" if bounds else ""
            lines.append(f"  {sf.name} = {value!r}  # {sf.metadata.get('doc', '')}{valid}")
    return "\n".join(lines)
