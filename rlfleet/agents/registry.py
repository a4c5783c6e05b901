"""``run.algorithm`` -> agent spec, loaded lazily.

Adding an algorithm is one line here plus its ``rlfleet/agents/<name>/`` folder. Specs and
config classes import no torch, so listing algorithms, building and validating configs, and the
launcher process stay light.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from rlfleet.errors import ConfigError

#: run.algorithm -> the module holding that agent family's ``SPEC``.
AGENTS: dict[str, str] = {
    "apex": "rlfleet.agents.apex.spec",
    "impala": "rlfleet.agents.impala.spec",
    "dagger": "rlfleet.agents.dagger.spec",
    "ppo": "rlfleet.agents.ppo.spec",
    "dpg": "rlfleet.agents.dpg.spec",
    "scst": "rlfleet.agents.scst.spec",
}

#: The algorithm of a config that does not name one.
DEFAULT_ALGORITHM = "apex"


def names() -> tuple[str, ...]:
    """Every valid ``run.algorithm``."""
    return tuple(AGENTS)


def check_name(algorithm: Any) -> str:
    """``algorithm`` if it is registered; ConfigError naming the valid ones otherwise."""
    if not isinstance(algorithm, str) or algorithm not in AGENTS:
        raise ConfigError(f"run.algorithm {algorithm!r} is unknown; valid: {', '.join(AGENTS)}")
    return algorithm


def spec(algorithm: str) -> Any:
    """The :class:`~rlfleet.agents.spec.AgentSpec` of ``algorithm`` (imported on first use)."""
    return importlib.import_module(AGENTS[check_name(algorithm)]).SPEC


def spec_of(config: Any) -> Any:
    """The spec of a built config (its ``run.algorithm``)."""
    return spec(config.run.algorithm)


def algorithm_of(data: Mapping[str, Any]) -> str:
    """``run.algorithm`` of raw config data (the default when absent), checked."""
    run = data.get("run", {})
    algorithm = (
        run.get("algorithm", DEFAULT_ALGORITHM) if isinstance(run, Mapping) else DEFAULT_ALGORITHM
    )
    return check_name(algorithm)


def config_class(algorithm: str) -> type:
    """The config dataclass of ``algorithm``."""
    return spec(algorithm).config_class


def config_from_dict(data: Mapping[str, Any]) -> Any:
    """Build and validate the config that ``data``'s ``run.algorithm`` asks for."""
    from rlfleet.config import from_dict

    return from_dict(config_class(algorithm_of(data)), data)
