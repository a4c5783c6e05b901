"""What ``rlfleet bench minatar`` keeps of a run: per-checkpoint readings and the run's record,
filled from an rlfleet run folder or from the JSON an SB3 ``--child`` printed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Checkpoint:
    """What one implementation had reached at one checkpoint minute."""

    minute: float
    #: clock seconds of the env-step reading (rlfleet: its metrics row; SB3: its clock, which
    #: excludes its evaluations); None if the run had no reading by then.
    at_s: float | None = None
    env_steps: int | None = None
    #: env_steps / at_s: the average rate since the process launched.
    env_steps_per_s: float | None = None
    eval_return_mean: float | None = None
    eval_return_std: float | None = None
    eval_episodes: int | None = None
    #: clock seconds at which that evaluation finished (SB3: started, its clock stands still).
    eval_at_s: float | None = None
    eval_env_steps: int | None = None


@dataclass
class RunRecord:
    """One run of one implementation with one seed."""

    impl: str
    seed: int
    budget_s: float
    checkpoints: list[Checkpoint] = field(default_factory=list)
    #: the training end: env steps, its clock seconds and the average rate since launch
    end_at_s: float | None = None
    end_env_steps: int | None = None
    end_env_steps_per_s: float | None = None
    final_returns: list[float] = field(default_factory=list)
    final_return_mean: float | None = None
    final_return_std: float | None = None
    #: every evaluation of the run: wall_s, env_steps, return_mean, return_std (+ eval_s for SB3)
    evaluations: list[dict[str, float]] = field(default_factory=list)
    env_steps: int = 0
    updates: int | None = None
    #: SB3 only: seconds spent in its in-process evaluations (left out of its clock)
    eval_s: float | None = None
    stop_reason: str = ""
    process_wall_s: float = 0.0
    error: str | None = None
    run_dir: str | None = None
    command: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def env_steps_rate(steps: int | None, seconds: float | None) -> float | None:
    """``steps / seconds`` rounded to 0.1; None without a reading."""
    if steps is None or not seconds or seconds <= 0:
        return None
    return round(steps / seconds, 1)


def mean_and_std(returns: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and (population) standard deviation of returns; (None, None) without any."""
    if not returns:
        return None, None
    arr = np.asarray(returns, np.float64)
    return float(arr.mean()), float(arr.std())


def checkpoints_from_history(
    minutes: Sequence[float],
    progress: Sequence[tuple[float, int]],
    evaluations: Sequence[dict[str, Any]],
    eval_episodes: int,
) -> list[Checkpoint]:
    """Checkpoints of an rlfleet run from its env-step history and its evaluations.

    Args:
        minutes: checkpoint minutes.
        progress: (wall_s, env_steps) readings (its metrics rows), in any order.
        evaluations: final_eval.json's ``evaluations`` (wall_s, env_steps, return_mean,
            return_std), in any order.
        eval_episodes: episodes per periodic evaluation (recorded with each checkpoint).

    At minute m (t = 60 m seconds) the reading is the last one at or before t and the
    evaluation the last one finished at or before t; either is None when there is none yet.
    """
    rows = sorted((float(w), int(s)) for w, s in progress)
    evals = sorted(evaluations, key=lambda e: float(e["wall_s"]))
    out = []
    for minute in minutes:
        t = 60.0 * float(minute) + 1e-9
        cp = Checkpoint(minute=float(minute))
        before = [r for r in rows if r[0] <= t]
        if before:
            cp.at_s, cp.env_steps = round(before[-1][0], 3), before[-1][1]
            cp.env_steps_per_s = env_steps_rate(cp.env_steps, cp.at_s)
        done = [e for e in evals if float(e["wall_s"]) <= t]
        if done:
            e = done[-1]
            cp.eval_return_mean = float(e["return_mean"])
            cp.eval_return_std = float(e["return_std"]) if "return_std" in e else None
            cp.eval_episodes = eval_episodes
            cp.eval_at_s = float(e["wall_s"])
            cp.eval_env_steps = int(e["env_steps"]) if "env_steps" in e else None
        out.append(cp)
    return out


def record_from_run(
    rec: RunRecord,
    final_eval: dict[str, Any],
    progress: Sequence[tuple[float, int]],
    minutes: Sequence[float],
    eval_episodes: int,
) -> RunRecord:
    """Fill an rlfleet record from its final_eval.json contents and its env-step history."""
    rec.stop_reason = str(final_eval.get("stop_reason", ""))
    rec.env_steps = int(final_eval.get("env_steps", 0))
    rec.updates = final_eval.get("updates")
    rec.evaluations = [dict(e) for e in final_eval.get("evaluations", [])]
    rec.checkpoints = checkpoints_from_history(minutes, progress, rec.evaluations, eval_episodes)
    if progress:
        wall, steps = max((float(w), int(s)) for w, s in progress)
        rec.end_at_s, rec.end_env_steps = round(wall, 3), steps
        rec.end_env_steps_per_s = env_steps_rate(steps, wall)
    rec.final_returns = [float(r) for r in final_eval.get("final_returns") or []]
    rec.final_return_mean, rec.final_return_std = mean_and_std(rec.final_returns)
    return rec


def record_from_child(rec: RunRecord, res: dict[str, Any]) -> RunRecord:
    """Fill a peer's record from the JSON its ``--child`` process printed."""
    rec.checkpoints = [Checkpoint(**c) for c in res["checkpoints"]]
    rec.evaluations = list(res["evaluations"])
    rec.env_steps = int(res["env_steps"])
    rec.end_at_s = res["end_at_s"]
    rec.end_env_steps = int(res["env_steps"])
    rec.end_env_steps_per_s = env_steps_rate(rec.end_env_steps, rec.end_at_s)
    rec.final_returns = [float(r) for r in res["final_returns"]]
    rec.final_return_mean, rec.final_return_std = mean_and_std(rec.final_returns)
    rec.eval_s = res["eval_s"]
    rec.stop_reason = res["stop_reason"]
    rec.details = {k: res[k] for k in ("sb3_version", "torch_threads", "n_envs") if k in res}
    return rec
