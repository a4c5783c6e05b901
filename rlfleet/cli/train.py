"""``rlfleet train``: resolve the config, pick the run folder, start the local fleet, summarise."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from rlfleet.config import apply_overrides, load_toml
from rlfleet.errors import ConfigError
from rlfleet.runtime.configs import AnyConfig, config_from_dict
from rlfleet.runtime.launcher import LocalFleet, RunResult

ALGORITHM_NAMES = {"apex": "Ape-X DQN", "impala": "IMPALA"}


def _check_budget_left(config: AnyConfig, counters: dict, resume: str) -> None:
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


def _validate_env(config: AnyConfig) -> None:
    """Fail fast, before any process starts, on an unknown id or a continuous action space."""
    from rlfleet.envs import check_discrete, make_env

    env = make_env(config.env.id, env_kwargs=config.env.kwargs or None)
    try:
        name = ALGORITHM_NAMES.get(config.run.algorithm, config.run.algorithm)
        check_discrete(env.action_space, config.env.id, algorithm=name)
    finally:
        env.close()


def teacher_override(teacher: str, config: AnyConfig) -> str:
    """``--teacher PATH`` as the override ``kickstart.teacher = <checkpoint folder>``, after
    loading the teacher once here: a bad path or a teacher that does not fit the student's
    environment fails before any process starts. The checkpoint is pinned (absolute path), so
    a resumed run distils from the same teacher."""
    if config.run.algorithm != "impala":
        raise ConfigError(
            f"--teacher kickstarts an IMPALA student; this run's run.algorithm is "
            f"{config.run.algorithm!r} (use an impala-* preset or --set run.algorithm=impala)"
        )
    from rlfleet.runtime.checkpoint import resolve_checkpoint
    from rlfleet.runtime.policy_nets import env_spec, load_teacher

    folder = resolve_checkpoint(Path(teacher)).resolve()
    obs_shape, _, num_actions = env_spec(config)
    load_teacher(folder, config.kickstart.temperature, obs_shape, num_actions)
    return f"kickstart.teacher={json.dumps(str(folder))}"


def _resolve_demos(config: AnyConfig) -> None:
    """Make ``dqfd.demos`` absolute (roles may run elsewhere) and check the file against the
    environment now, before any process starts; a missing file says how to record one."""
    dqfd = getattr(config, "dqfd", None)
    if dqfd is None or not dqfd.enabled:
        return
    from rlfleet.envs import make_vector_env
    from rlfleet.replay import load_demos

    path = Path(dqfd.demos).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(
            f"dqfd.demos: no demonstration file at {str(path)!r}; record one first, e.g. "
            f"`rlfleet record {config.env.id} --policy MODULE:FUNCTION --episodes 20 "
            f"--out {dqfd.demos}` (see docs/demonstrations.md)"
        )
    probe = make_vector_env(config.env.id, 1, 0, env_kwargs=config.env.kwargs or None)
    try:
        load_demos(path, config.env.id, probe.obs_shape, probe.obs_dtype, probe.num_actions)
    finally:
        probe.close()
    dqfd.demos = str(path)


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
) -> RunResult:
    """Run one training job. ``transport``/``run_name``/``keep_keys`` become ``--set
    transport.*`` overrides (so they land in config.toml); ``redis_url`` does not, since it may
    hold a password: it comes from the argument or ``$RLFLEET_REDIS_URL``. ``local_actors=0``
    is ``rlfleet learner``: no actors here, they join from other hosts. ``teacher`` (a checkpoint
    or run folder) kickstarts an IMPALA student, see :func:`teacher_override`.
    ``local_replay=False``: with ``transport.replay_service``, the service is not started here
    (``rlfleet learner``: it runs as ``rlfleet replay``, next to Redis)."""
    from rlfleet.cli.presets import DEFAULT_PRESET, build_config
    from rlfleet.runtime.checkpoint import latest_checkpoint, read_state
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
        data = load_toml(resume_dir / "config.toml")
        config = config_from_dict(apply_overrides(data, overrides))
        if teacher:
            overrides = [*overrides, teacher_override(teacher, config)]
            config = config_from_dict(apply_overrides(data, overrides))
        run_dir = str(resume_dir)
        resume_from = str(ckpt)
        _check_budget_left(config, read_state(ckpt)["counters"], resume)
    else:
        config = build_config(preset, overrides)
        if teacher:
            config = build_config(preset, [*overrides, teacher_override(teacher, config)])
        if run_dir is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            run_dir = str(Path("runs") / f"{preset or DEFAULT_PRESET}-{stamp}")
    _validate_env(config)
    _resolve_demos(config)
    fleet = LocalFleet(
        config,
        run_dir,
        resume_from=resume_from,
        start_time=start_time,
        show_progress=show_progress,
        redis_url=redis_url if config.transport.kind == "redis" else None,
        local_actors=local_actors,
        local_replay=local_replay,
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
