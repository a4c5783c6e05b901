"""Scenarios: the 18 Pantheon emulators by name, mtenv-style random samplers, TOML files.

A :class:`Scenario` describes the path only (traces, queues, delay, loss); how many flows run and
what they run is chosen by the caller. ``build_network`` turns a scenario into an engine.

One module per job: :mod:`.spec` (``Trace``, ``Scenario``, ``build_schedule``,
``build_network``), :mod:`.pantheon` (the 18 reference paths), :mod:`.samplers` (random
scenarios), :mod:`.files` (TOML) and :mod:`.registry` (lookup by name, number or file). Every
name is importable from this package.
"""

from __future__ import annotations

from rlfleet.envs.netsim.scenarios.files import load_scenarios, scenario_from_dict
from rlfleet.envs.netsim.scenarios.pantheon import CALIBRATED, PANTHEON
from rlfleet.envs.netsim.scenarios.registry import get_scenario, resolve_scenarios
from rlfleet.envs.netsim.scenarios.samplers import SAMPLERS, sample_scenario
from rlfleet.envs.netsim.scenarios.spec import (
    TRACE_KINDS,
    Scenario,
    Trace,
    build_network,
    build_schedule,
)

__all__ = [
    "CALIBRATED",
    "PANTHEON",
    "SAMPLERS",
    "TRACE_KINDS",
    "Scenario",
    "Trace",
    "build_network",
    "build_schedule",
    "get_scenario",
    "load_scenarios",
    "resolve_scenarios",
    "sample_scenario",
    "scenario_from_dict",
]
