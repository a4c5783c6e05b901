"""``rlfleet.train``: resolve a config, pick the run folder, run the fleet on this host, return
its result. ``rlfleet train`` / ``rlfleet learner`` are a thin layer over :func:`train`.

Ctrl-C behaves as in the CLI: the first press stops the run in order (actors, then the learner
saves its checkpoint, then the final evaluation) and :func:`train` returns the result with
``stop_reason == "interrupted"``; a press during the shutdown skips only the final evaluation.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlfleet.agents.registry import config_from_dict
from rlfleet.config import apply_overrides, load_toml, merge, to_dict
from rlfleet.errors import ConfigError
from rlfleet.fleet.report import RunResult

__all__ = ["REDIS_URL_ENV", "Overrides", "resolve_config", "teacher_override", "train"]

#: The environment variable that may hold the Redis URL (keeps a password out of ``ps``).
REDIS_URL_ENV = "RLFLEET_REDIS_URL"
#: ``["section.key=value", ...]`` (TOML values, as ``--set``) or ``{"section.key": value}``.
Overrides = Sequence[str] | Mapping[str, Any] | None


def _override_strings(overrides: Overrides) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """``--set`` strings and a nested ``{section: {key: value}}`` of the Python values."""
    if overrides is None:
        return [], {}
    if isinstance(overrides, str):
        raise ConfigError(
            f"overrides must be a list of 'section.key=value' strings or a mapping, got the "
            f"string {overrides!r} (wrap it in a list)"
        )
    if isinstance(overrides, Mapping):
        nested: dict[str, dict[str, Any]] = {}
        for dotted, value in overrides.items():
            if not isinstance(dotted, str) or "." not in dotted:
                raise ConfigError(f"override key {dotted!r} must look like 'section.key'")
            section, key = dotted.split(".", 1)
            nested.setdefault(section, {})[key] = value
        return [], nested
    return [str(o) for o in overrides], {}


def resolve_config(
    source: Any, overrides: Overrides = None, flags: Sequence[str] = ()
) -> tuple[Any, str]:
    """A validated config from ``source`` plus ``overrides``, and a name for run folders.

    ``source``: a preset name (``"cartpole"``), a path to a preset / config TOML file, a
    mapping of sections (``{"run": {...}, "env": {...}}``), or a config object already built
    (e.g. one from :func:`resolve_config`). ``flags``: more ``--set`` strings, applied after
    ``overrides``."""
    from rlfleet.cli.presets import DEFAULT_PRESET, load_preset

    strings, nested = _override_strings(overrides)
    if source is None:
        source = DEFAULT_PRESET
    if isinstance(source, (str, Path)):
        data, name = load_preset(str(source)), Path(str(source)).stem
    elif isinstance(source, Mapping):
        data, name = {k: dict(v) for k, v in source.items()}, "config"
    elif dataclasses.is_dataclass(source) and not isinstance(source, type):
        data, name = to_dict(source), "config"
    else:
        raise ConfigError(
            f"train() takes a preset name, a TOML path, a mapping of config sections or a "
            f"config object; got a {type(source).__name__}"
        )
    data.pop("preset", None)  # a preset's descriptive table, not config
    data = apply_overrides(merge(apply_overrides(data, strings), nested), list(flags))
    return config_from_dict(data), name


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


def _transport_overrides(transport: str | None, run_name: str | None, keep_keys: bool) -> list[str]:
    """The transport flags as config overrides, so they are validated and land in config.toml."""
    out = [f"transport.kind={transport}"] if transport else []
    if run_name:
        out.append(f'transport.run="{run_name}"')
    if keep_keys:
        out.append("transport.keep_keys=true")
    return out


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


def _resume_config(
    resume: str, overrides: Overrides, flags: Sequence[str], teacher: str | None
) -> tuple[Any, str]:
    """The config of the run folder ``resume`` with ``overrides``, and its latest checkpoint,
    checked (files, counters, network, budgets left) before anything is touched."""
    from rlfleet.agents.common.checkpoint import check_resumable, latest_checkpoint

    resume_dir = Path(resume)
    if not (resume_dir / "config.toml").exists():
        raise ConfigError(f"--resume {resume}: no config.toml there; is it a run folder?")
    ckpt = latest_checkpoint(resume_dir)
    if ckpt is None:
        raise ConfigError(f"--resume {resume}: the run has no checkpoint yet")
    data = load_toml(resume_dir / "config.toml")
    config, _ = resolve_config(data, overrides, flags)
    if teacher:
        config, _ = resolve_config(to_dict(config), [teacher_override(teacher, config)])
    _check_budget_left(config, check_resumable(ckpt, config)["counters"], resume)
    return config, str(ckpt)


def train(
    preset_or_config: Any = None,
    overrides: Overrides = None,
    run_dir: str | Path | None = None,
    callbacks: Sequence[Any] = (),
    *,
    resume: str | Path | None = None,
    show_progress: bool = False,
    in_process: bool = False,
    transport: str | None = None,
    redis_url: str | None = None,
    run_name: str | None = None,
    keep_keys: bool = False,
    local_actors: int | None = None,
    teacher: str | Path | None = None,
    local_replay: bool = True,
    start_time: float | None = None,
    ray: str | None = None,
    ray_max_restarts: int = 3,
    ray_learner_gpus: float = 0.0,
) -> RunResult:
    """Train one run on this host and block until it ends; returns its :class:`RunResult`
    (also written to ``RUN_DIR/final_eval.json``).

    Args:
        preset_or_config: a preset name (default ``"cartpole"``), a TOML path, a mapping of
            config sections, or a config object (see :func:`resolve_config`).
        overrides: ``["learner.lr=3e-4", ...]`` (TOML values, as ``--set``) or
            ``{"learner.lr": 3e-4, ...}``.
        run_dir: the run folder (default ``runs/<preset>-<timestamp>``).
        callbacks: :class:`~rlfleet.api.callbacks.Callback` objects called on evaluations and
            checkpoints; one returning True stops the run (early stopping). A callback's
            exception stops the run and is re-raised here after the shutdown.
        resume: a run folder to continue from its latest checkpoint (its own config, plus
            ``overrides``); ``run_dir`` is then that folder.
        show_progress: the live progress line (the CLI's default; off here).
        in_process: every role a thread of this process (debugging; slower).
        transport: ``"local"`` or ``"redis"`` (``redis_url`` implies ``"redis"``); the URL comes
            from ``redis_url`` or ``$RLFLEET_REDIS_URL`` and is never written to the run folder.
        run_name, keep_keys: the Redis run name and whether its keys outlive the run.
        local_actors: actors on this host (0: only actors of other hosts, ``rlfleet learner``).
        teacher: kickstart an IMPALA student from this run folder or checkpoint.
        local_replay: with ``transport.replay_service``, start the service here.
        start_time: the Unix time the run's clock starts from (the CLI passes its own start).
        ray: place the roles on a Ray cluster at this address (``""``: a local cluster started
            for the run), over Redis (``redis_url``, or a redis-server started on the learner's
            node); see :mod:`rlfleet.fleet.cluster.ray`. ``ray_max_restarts``: times Ray
            restarts a dead actor, evaluator or service; ``ray_learner_gpus``: the learner's GPUs.

    Raises:
        ConfigError / EnvError / CheckpointError: bad input, before any process starts and
            before anything is written.
        RlfleetError: the learner failed; exceptions of callbacks as raised.
    """
    from rlfleet.api.callbacks import EventDispatcher
    from rlfleet.cli.presets import DEFAULT_PRESET
    from rlfleet.fleet.launcher import LocalFleet, warm_up

    dispatcher = EventDispatcher(callbacks) if callbacks else None
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
    flags = _transport_overrides(transport, run_name, keep_keys)
    if local_actors == 0 and transport != "redis":
        raise ConfigError(
            "actors on other hosts need the Redis transport: pass --redis URL "
            f"(or set ${REDIS_URL_ENV} and pass --transport redis)"
        )
    resume_from = None
    if resume:
        config, resume_from = _resume_config(
            str(resume), overrides, flags, str(teacher) if teacher else None
        )
        run_dir = str(resume)
    else:
        config, name = resolve_config(preset_or_config, overrides, flags)
        if teacher:
            config, _ = resolve_config(config, [teacher_override(str(teacher), config)])
        if run_dir is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            run_dir = str(Path("runs") / f"{name or DEFAULT_PRESET}-{stamp}")
    if ray is not None:
        from rlfleet.fleet.cluster.ray import RayFleet, RayResources

        resources = RayResources(
            learner_cpus=float(config.learner.torch_threads),
            learner_gpus=ray_learner_gpus,
            max_restarts=ray_max_restarts,
        )
        fleet: LocalFleet = RayFleet(
            config,
            run_dir,
            address=ray or None,
            resources=resources,
            redis_url=redis_url,
            resume_from=resume_from,
            start_time=start_time,
            show_progress=show_progress,
            on_event=dispatcher,
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
            on_event=dispatcher,
        )
    result = fleet.run()
    if dispatcher is not None and dispatcher.error is not None:
        raise dispatcher.error
    return result
