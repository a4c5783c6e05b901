"""Presets are TOML files in ``rlfleet/cli/presets/``; this module finds, loads and lists them."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from rlfleet.agents.registry import algorithm_of, config_class, config_from_dict
from rlfleet.config import apply_overrides, describe, load_toml
from rlfleet.errors import ConfigError

PRESET_DIR = Path(__file__).with_name("presets")
DEFAULT_PRESET = "cartpole"


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def load_preset(name: str) -> dict[str, Any]:
    """The raw sections of a preset (a name, or a path to a TOML file)."""
    path = Path(name)
    if path.suffix == ".toml" and path.exists():
        return load_toml(path)
    names = preset_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown preset {name!r}.{hint} Valid presets: {', '.join(names)}")
    return load_toml(PRESET_DIR / f"{name}.toml")


def build_config(preset: str | None, overrides: list[str]) -> Any:
    """Preset + ``--set`` overrides -> a validated config of the preset's ``run.algorithm``."""
    data = load_preset(preset or DEFAULT_PRESET)
    data.pop("preset", None)  # descriptive table, not config
    return config_from_dict(apply_overrides(data, overrides))


def describe_presets() -> str:
    lines = []
    for name in preset_names():
        meta = load_toml(PRESET_DIR / f"{name}.toml").get("preset", {})
        lines.append(f"{name:24s} {meta.get('description', '')}")
    return "\n".join(lines)


def describe_config(preset: str | None) -> str:
    data = load_preset(preset) if preset else {}
    data.pop("preset", None)
    algorithm = algorithm_of(data)
    text = f"# run.algorithm = {algorithm}\n" + describe(config_class(algorithm))
    if preset:
        text += f"\n\n# preset {preset} sets:\n" + "\n".join(
            f"{section}.{key} = {value!r}"
            for section, values in data.items()
            for key, value in values.items()
        )
    return text
