"""Checks and path resolution before any role starts or any file is written: the environment
against the agent, the agent's own files (demonstrations, a teacher), and whether the run may
have a service at the memory node."""

from __future__ import annotations

from typing import Any

from rlfleet.agents import registry
from rlfleet.envs.check import check_custom_env
from rlfleet.envs.spec import probe_env
from rlfleet.errors import ConfigError


def check_service(config: Any, spec: Any) -> None:
    """``transport.replay_service`` needs an agent with a service, and a config it can serve."""
    if not config.transport.replay_service:
        return
    if spec.service is None:
        raise ConfigError(
            f"transport.replay_service = true needs an agent with a replay service; "
            f"run.algorithm {spec.name!r} ({spec.title}) has none (set "
            "transport.replay_service = false)"
        )
    spec.service.check(config)


def prepare_run(config: Any) -> Any:
    """Refuse what cannot run (an environment the agent cannot train, a service it lacks, files
    that are missing or do not fit) and resolve the config's paths; returns the agent spec.
    Imports no torch."""
    spec = registry.spec_of(config)
    check_custom_env(config.env.id, config.env.kwargs)  # the user's own env: Gymnasium's checker
    env = probe_env(config.env.id, config.env.kwargs)
    spec.check(config, env)
    check_service(config, spec)
    spec.prepare(config)
    return spec
