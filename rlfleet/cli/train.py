"""``rlfleet train``: resolve the config, pick the run folder, start the local fleet, summarise."""

from __future__ import annotations

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


def train(
    preset: str | None,
    overrides: list[str],
    run_dir: str | None,
    resume: str | None,
    start_time: float | None = None,
    show_progress: bool = True,
) -> RunResult:
    from rlfleet.cli.presets import DEFAULT_PRESET, build_config
    from rlfleet.runtime.checkpoint import latest_checkpoint
    from rlfleet.runtime.launcher import warm_up

    warm_up()  # roles' imports (torch) load in the background while we validate

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
        config, run_dir, resume_from=resume_from, start_time=start_time, show_progress=show_progress
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
    return result
