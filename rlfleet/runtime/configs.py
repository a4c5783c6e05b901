"""Which config class a run uses: ``run.algorithm`` picks it.

Every config has the shared ``run``, ``env``, ``eval`` and ``transport`` sections, so the
launcher, the evaluator and the transports read them the same way for every algorithm; the rest
is the algorithm's own. Ape-X (and its DQfD variants, a section of the Ape-X config) is the
default: a config without ``run.algorithm`` is an Ape-X config.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rlfleet.config import from_dict
from rlfleet.errors import ConfigError
from rlfleet.runtime.apex_config import ALGORITHMS, ApexConfig
from rlfleet.runtime.impala_config import ImpalaConfig

#: Config class per run.algorithm (anything not listed is an Ape-X config).
CONFIG_CLASSES: dict[str, type] = {"apex": ApexConfig, "impala": ImpalaConfig}

AnyConfig = ApexConfig | ImpalaConfig


def algorithm_of(data: Mapping[str, Any]) -> str:
    """``run.algorithm`` of raw config data (``"apex"`` when absent)."""
    run = data.get("run", {})
    algorithm = run.get("algorithm", "apex") if isinstance(run, Mapping) else "apex"
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"run.algorithm {algorithm!r} is unknown; valid: {', '.join(ALGORITHMS)}")
    return str(algorithm)


def config_class(algorithm: str) -> type:
    """The config dataclass of ``algorithm``."""
    return CONFIG_CLASSES.get(algorithm, ApexConfig)


def config_from_dict(data: Mapping[str, Any]) -> AnyConfig:
    """Build and validate the config that ``data``'s ``run.algorithm`` asks for."""
    return from_dict(config_class(algorithm_of(data)), data)
