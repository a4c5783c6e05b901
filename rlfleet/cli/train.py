"""``rlfleet train``: resolve the config, pick the run folder, start the local fleet, summarise."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from rlfleet.agents.registry import config_from_dict
from rlfleet.config import apply_overrides, load_toml
from rlfleet.errors import ConfigError
from rlfleet.fleet.launcher import LocalFleet, RunResult


def _check_budget_left(config: Any, counters: dict, resume: str) -> None:
    """Refuse to resume a run that is already at one of its budgets: its roles would start only
    to be stopped at once. The message names the budget and how to raise it."""
    rc = config.run
    budgets = [
        ("run.total_env_steps", rc.total_env_steps, int(counters.get("env_steps", 0)), "env steps"),
        ("run.max_seconds", rc.max_seconds, float(counters.get("elapsed_s", 0.0)), "seconds"),
        (
            "learner.max_updates",
            config.learner.max_updates,
            int(counters.get("updates", 0)),
            "updates",
        ),
    ]
    for key, limit, done, unit in budgets:
        if limit and done >= limit:
            raise ConfigError(
                f"--resume {resume}: the run already has {done:,} {unit}, at or past {key} ="
                f" {limit:,}; raise it to continue (e.g. --set {key}={type(limit)(2 * done)},"
                " or 0 for no limit)"
            )


def teacher_override(teacher: str, config: Any) -> str:
    """``--teacher PATH`` as the override ``kickstart.teacher = PATH``, for agents whose config
    has a ``[kickstart]`` section (the agent pins and checks the teacher before any process
    starts)."""
    if not hasattr(config, "kickstart"):
        raise ConfigError(
            f"--teacher kickstarts a student; run.algorithm {config.run.algorithm!r} has no "
            "[kickstart] section (use an impala-* preset or --set run.algorithm=impala)"
        )
    return f"kickstart.teacher={json.dumps(str(Path(teacher).resolve()))}"


REDIS_URL_ENV = "RLFLEET_REDIS_URL"


def _transport_overrides(transport: str | None, run_name: str | None, keep_keys: bool) -> list[str]:
    """The transport flags as config overrides, so they are validated and land in config.toml."""
    out = [f"transport.kind={transport}"] if transport else []
    if run_name:
        out.append(f'transport.run="{run_name}"')
    if keep_keys:
        out.append("transport.keep_keys=true")
    return out


def train(
    preset: str | None,
    overrides: list[str],
    run_dir: str | None,
    resume: str | None,
    start_time: float | None = None,
    show_progress: bool = True,
    transport: str | None = None,
    redis_url: str | None = None,
    run_name: str | None = None,
    keep_keys: bool = False,
    local_actors: int | None = None,
    teacher: str | None = None,
    local_replay: bool = True,
    in_process: bool = False,
    ray: str | None = None,
    ray_max_restarts: int = 3,
    ray_learner_gpus: float = 0.0,
) -> RunResult:
    """Run one training job. ``transport``/``run_name``/``keep_keys`` become ``--set
    transport.*`` overrides (so they land in config.toml); ``redis_url`` does not, since it may
    hold a password: it comes from the argument or ``$RLFLEET_REDIS_URL``. ``local_actors=0``
    is ``rlfleet learner``: no actors here, they join from other hosts. ``teacher`` (a checkpoint
    or run folder) kickstarts an IMPALA student, see :func:`teacher_override`.
    ``local_replay=False``: with ``transport.replay_service``, the service is not started here
    (``rlfleet learner``: it runs as ``rlfleet replay``, next to Redis). ``in_process``: every
    role a thread of this process (debugging: breakpoints work in any role). ``ray``: place the
    roles on a Ray cluster at this address ('' : a local cluster started for the run), over
    Redis (``redis_url``, or a redis-server started on the learner's node), see
    :mod:`rlfleet.fleet.cluster.ray`."""
    from rlfleet.agents.common.checkpoint import check_resumable, latest_checkpoint
    from rlfleet.cli.presets import DEFAULT_PRESET, build_config
    from rlfleet.fleet.launcher import warm_up

    if ray is not None:
        if in_process or local_actors is not None or not local_replay:
            raise ConfigError("--ray places every role itself: drop --in-process")
        if transport == "local":
            raise ConfigError("--ray runs over Redis: drop --transport local")
        transport = "redis"
    elif not in_process:
        warm_up()  # roles' imports (torch) load in the background while we validate

    if redis_url and transport is None:
        transport = "redis"  # an explicit URL means it (the environment variable does not)
    redis_url = redis_url or os.environ.get(REDIS_URL_ENV) or None
    overrides = [*overrides, *_transport_overrides(transport, run_name, keep_keys)]
    if local_actors == 0 and transport != "redis":
        raise ConfigError(
            "actors on other hosts need the Redis transport: pass --redis URL "
            f"(or set ${REDIS_URL_ENV} and pass --transport redis)"
        )

    resume_from = None
    if resume:
        resume_dir = Path(resume)
        if not (resume_dir / "config.toml").exists():
            raise ConfigError(f"--resume {resume}: no config.toml there; is it a run folder?")
        ckpt = latest_checkpoint(resume_dir)
        if ckpt is None:
            raise ConfigError(f"--resume {resume}: the run has no checkpoint yet")
        data = load_toml(resume_dir / "config.toml")
        config = config_from_dict(apply_overrides(data, overrides))
        if teacher:
            overrides = [*overrides, teacher_override(teacher, config)]
            config = config_from_dict(apply_overrides(data, overrides))
        run_dir = str(resume_dir)
        resume_from = str(ckpt)
        # read and checked now (files, counters, network), before any file is touched
        _check_budget_left(config, check_resumable(ckpt, config)["counters"], resume)
    else:
        config = build_config(preset, overrides)
        if teacher:
            config = build_config(preset, [*overrides, teacher_override(teacher, config)])
        if run_dir is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            run_dir = str(Path("runs") / f"{preset or DEFAULT_PRESET}-{stamp}")
    if ray is not None:
        from rlfleet.fleet.cluster.ray import RayFleet, RayResources

        fleet: LocalFleet = RayFleet(
            config,
            run_dir,
            address=ray or None,
            resources=RayResources(
                learner_cpus=float(config.learner.torch_threads),
                learner_gpus=ray_learner_gpus,
                max_restarts=ray_max_restarts,
            ),
            redis_url=redis_url,
            resume_from=resume_from,
            start_time=start_time,
            show_progress=show_progress,
        )
    else:
        fleet = LocalFleet(
            config,
            run_dir,
            resume_from=resume_from,
            start_time=start_time,
            show_progress=show_progress,
            redis_url=redis_url if config.transport.kind == "redis" else None,
            local_actors=local_actors,
            local_service=local_replay,
            in_process=in_process,
        )
    result = fleet.run()
    solved = (
        f", solved at {result.solved_at_s:.1f} s / {result.solved_at_env_steps:,} env steps"
        if result.solved
        else ""
    )
    final = f"{result.final_return_mean:.1f}" if result.final_return_mean is not None else "n/a"
    started = (
        f"; first env step at {result.first_env_step_s:.1f} s, first update at "
        f"{result.first_update_s:.1f} s"
        if result.first_env_step_s is not None and result.first_update_s is not None
        else ""
    )
    print(
        f"run {result.run_dir}: stopped ({result.stop_reason}) after {result.wall_s:.1f} s, "
        f"{result.env_steps:,} env steps, {result.updates:,} updates{solved}; final eval mean {final}"
        f"{started}"
    )
    if result.transport == "redis":
        print(
            f"redis run {result.redis_run}: actors dropped {result.transport_dropped} messages, "
            f"peak backlog {result.transport_backlog_peak}"
        )
    for warning in result.warnings:
        print(f"rlfleet: warning: {warning}")
    return result
