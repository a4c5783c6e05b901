"""Checks and path resolution before any role starts or any file is written: the environment
against the agent, the agent's own files (demonstrations, a teacher), and whether the run may
have a service at the memory node; then the run folder and the run's Redis name claimed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rlfleet.agents import registry
from rlfleet.agents.common.checkpoint import check_resumable
from rlfleet.config import to_dict
from rlfleet.envs.check import check_custom_env
from rlfleet.envs.spec import probe_env
from rlfleet.errors import ConfigError
from rlfleet.fleet import rundir
from rlfleet.fleet.redis_run import RedisRun, open_redis_run


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


def claim_run(
    config: Any,
    run_dir: Path,
    resume_from: str | None,
    redis_url: str | None,
    redis_private: bool = False,
) -> RedisRun | None:
    """Refuse what cannot run, then create the run folder and claim the run's Redis name (None
    on the local transport). Refusals come before anything is claimed or written: the run
    folder, the checkpoint to resume from (files, counters, network), then the agent's own
    checks; a bad URL or a taken name removes a folder this call created.
    ``redis_private``: the server was started for this run alone (see
    :func:`~rlfleet.fleet.redis_run.open_redis_run`)."""
    rundir.check_run_dir(run_dir, resuming=bool(resume_from))
    if resume_from:
        check_resumable(resume_from, config)
    prepare_run(config)
    created = rundir.make_run_dir(run_dir)  # a folder that cannot be written: a message
    try:
        return open_redis_run(
            config, redis_url, str(run_dir), json.dumps(to_dict(config)), private=redis_private
        )
    except BaseException:
        if created:
            rundir.remove_if_unused(run_dir)
        raise
