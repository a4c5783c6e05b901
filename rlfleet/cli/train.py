"""``rlfleet train``: resolve the config, pick the run folder, start the local fleet, summarise."""

from __future__ import annotations

import os
import time
from pathlib import Path

from rlfleet.config import apply_overrides, from_dict, load_toml
from rlfleet.errors import ConfigError
from rlfleet.runtime.apex_config import ApexConfig
from rlfleet.runtime.launcher import LocalFleet, RunResult


def _validate_env(config: ApexConfig) -> None:
    """Fail fast, before any process starts, on an unknown id or a continuous action space."""
    from rlfleet.envs import check_discrete, make_env

    env = make_env(config.env.id, env_kwargs=config.env.kwargs or None)
    try:
        check_discrete(env.action_space, config.env.id, algorithm="Ape-X DQN")
    finally:
        env.close()


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
) -> RunResult:
    """Run one training job. ``transport``/``run_name``/``keep_keys`` become ``--set
    transport.*`` overrides (so they land in config.toml); ``redis_url`` does not, since it may
    hold a password: it comes from the argument or ``$RLFLEET_REDIS_URL``. ``local_actors=0``
    is ``rlfleet learner``: no actors here, they join from other hosts."""
    from rlfleet.cli.presets import DEFAULT_PRESET, build_config
    from rlfleet.runtime.checkpoint import latest_checkpoint
    from rlfleet.runtime.launcher import warm_up

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
        config = from_dict(
            ApexConfig, apply_overrides(load_toml(resume_dir / "config.toml"), overrides)
        )
        run_dir = str(resume_dir)
        resume_from = str(ckpt)
    else:
        config = build_config(preset, overrides)
        if run_dir is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            run_dir = str(Path("runs") / f"{preset or DEFAULT_PRESET}-{stamp}")
    _validate_env(config)
    fleet = LocalFleet(
        config,
        run_dir,
        resume_from=resume_from,
        start_time=start_time,
        show_progress=show_progress,
        redis_url=redis_url if config.transport.kind == "redis" else None,
        local_actors=local_actors,
    )
    result = fleet.run()
    solved = (
        f", solved at {result.solved_at_s:.1f} s / {result.solved_at_env_steps:,} env steps"
        if result.solved
        else ""
    )
    final = f"{result.final_return_mean:.1f}" if result.final_return_mean is not None else "n/a"
    print(
        f"run {result.run_dir}: stopped ({result.stop_reason}) after {result.wall_s:.1f} s, "
        f"{result.env_steps:,} env steps, {result.updates:,} updates{solved}; final eval mean {final}"
    )
    if result.transport == "redis":
        print(
            f"redis run {result.redis_run}: actors dropped {result.transport_dropped} messages, "
            f"peak backlog {result.transport_backlog_peak}"
        )
    for warning in result.warnings:
        print(f"rlfleet: warning: {warning}")
    return result
