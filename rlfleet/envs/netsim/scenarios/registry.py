"""Scenarios by name: a Pantheon name or number, ``calibrated`` / ``all``, or a TOML path."""

from __future__ import annotations

from rlfleet.envs.netsim.scenarios.files import load_scenarios
from rlfleet.envs.netsim.scenarios.pantheon import CALIBRATED, PANTHEON
from rlfleet.envs.netsim.scenarios.samplers import SAMPLERS
from rlfleet.envs.netsim.scenarios.spec import Scenario
from rlfleet.errors import ConfigError


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


def resolve_scenarios(names: list[str]) -> list[Scenario]:
    """Names, numbers, ``calibrated`` / ``heldout`` (the 12 others) / ``all``, or TOML paths ->
    scenarios."""
    out: list[Scenario] = []
    for n in names:
        if n == "all":
            out.extend(PANTHEON.values())
        elif n == "calibrated":
            out.extend(PANTHEON[c] for c in CALIBRATED)
        elif n == "heldout":  # the 12 scenarios the samplers never draw from
            out.extend(s for name, s in PANTHEON.items() if name not in CALIBRATED)
        elif n.endswith(".toml"):
            out.extend(load_scenarios(n))
        else:
            out.append(get_scenario(n))
    return out
