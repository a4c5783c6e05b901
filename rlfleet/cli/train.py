"""``rlfleet train`` / ``rlfleet learner``: :func:`rlfleet.api.training.train`, then a summary."""

from __future__ import annotations

from typing import Any

from rlfleet.api.training import REDIS_URL_ENV
from rlfleet.api.training import train as api_train
from rlfleet.fleet.report import RunResult

__all__ = ["REDIS_URL_ENV", "summarize", "train"]


def summarize(result: RunResult) -> list[str]:
    """The lines ``rlfleet train`` prints when a run ends."""
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
    lines = [
        f"run {result.run_dir}: stopped ({result.stop_reason}) after {result.wall_s:.1f} s, "
        f"{result.env_steps:,} env steps, {result.updates:,} updates{solved}; final eval mean "
        f"{final}{started}"
    ]
    if result.transport == "redis":
        lines.append(
            f"redis run {result.redis_run}: actors dropped {result.transport_dropped} messages, "
            f"peak backlog {result.transport_backlog_peak}"
        )
    lines += [f"rlfleet: warning: {warning}" for warning in result.warnings]
    return lines


def train(
    preset: str | None,
    overrides: list[str],
    run_dir: str | None,
    resume: str | None,
    start_time: float | None = None,
    show_progress: bool = True,
    **options: Any,
) -> RunResult:
    """Run one training job (:func:`rlfleet.api.training.train`'s ``options``: transport,
    redis_url, run_name, keep_keys, local_actors, teacher, local_replay, in_process) and print
    its summary."""
    result = api_train(
        preset,
        overrides,
        run_dir,
        resume=resume,
        start_time=start_time,
        show_progress=show_progress,
        **options,
    )
    for line in summarize(result):
        print(line)
    return result
