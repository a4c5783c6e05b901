"""What ``rlfleet bench minatar`` reports: the table rows, the printed table and the JSON
document ``--json`` writes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from benchmarks.minatar.protocol import (
    EVAL_MAX_EPISODE_STEPS,
    EVAL_SEED_OFFSET,
    FINAL_EVAL_SEED_OFFSET,
    IMPLS,
    ZOO_PPO,
    game_env_id,
)
from benchmarks.minatar.records import RunRecord


def table_rows(records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """One row per (run, checkpoint) and one ``final`` row per run, as the table prints them."""
    rows: list[dict[str, Any]] = []
    for r in records:
        for cp in r.checkpoints:
            rows.append(
                {
                    "impl": r.impl,
                    "seed": r.seed,
                    "minute": _fmt_minute(cp.minute),
                    "env_steps": cp.env_steps,
                    "env_steps_per_s": cp.env_steps_per_s,
                    "return_mean": cp.eval_return_mean,
                    "return_std": cp.eval_return_std,
                    "episodes": cp.eval_episodes,
                    "eval_at_s": cp.eval_at_s,
                    "note": "",
                }
            )
        rows.append(
            {
                "impl": r.impl,
                "seed": r.seed,
                "minute": "final",
                "env_steps": r.end_env_steps,
                "env_steps_per_s": r.end_env_steps_per_s,
                "return_mean": r.final_return_mean,
                "return_std": r.final_return_std,
                "episodes": len(r.final_returns) or None,
                "eval_at_s": None,
                "note": r.error or r.stop_reason,
            }
        )
    return rows


def _fmt_minute(minute: float) -> str:
    return f"{minute:g}"


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def format_return(mean: float | None, std: float | None, episodes: int | None) -> str:
    """``11.3 ± 4.2 (10)``; ``-`` without an evaluation."""
    if mean is None:
        return "-"
    text = f"{mean:.1f}" if std is None else f"{mean:.1f} ± {std:.1f}"
    return f"{text} ({episodes})" if episodes else text


def build_payload(
    records: Sequence[RunRecord],
    *,
    game: str,
    budget_s: float,
    minutes: Sequence[float],
    eval_interval_s: float,
    eval_episodes: int,
    final_episodes: int,
    seeds: Sequence[int],
    overrides: Sequence[str],
    skipped: Sequence[str],
    quick: bool,
    machine: dict[str, Any],
    sb3_torch_threads: int | None = None,
) -> dict[str, Any]:
    """The JSON document ``--json`` writes."""
    return {
        "benchmark": "minatar",
        "quick": quick,
        "protocol": {
            "env": game_env_id(game),
            "budget_s": budget_s,
            "checkpoint_minutes": list(minutes),
            "eval_episodes": eval_episodes,
            "final_episodes": final_episodes,
            "eval_max_episode_steps": EVAL_MAX_EPISODE_STEPS,
            "rlfleet_eval_interval_s": eval_interval_s,
            "eval_seeds": (
                f"round r: env i seeded seed + {EVAL_SEED_OFFSET} + r + i; final: seed + "
                f"{EVAL_SEED_OFFSET} + {FINAL_EVAL_SEED_OFFSET} + i"
            ),
            "clock": "seconds from launching the run's process; SB3's clock excludes its "
            "in-process evaluations",
            "env_steps_per_s": "env steps / clock seconds at the reading (average since launch)",
            "checkpoint_eval": "rlfleet: the latest periodic evaluation finished by the minute; "
            "SB3: evaluated at the minute of its clock",
            "sequential": "one run at a time, each in its own process",
            "sb3_torch_threads": sb3_torch_threads,
        },
        "presets": {k: v for k, v in IMPLS.items() if v},
        "hyperparameters": {"sb3-ppo": ZOO_PPO},
        "rlfleet_overrides": list(overrides),
        "seeds": list(seeds),
        "skipped": list(skipped),
        "machine": machine,
        "runs": [asdict(r) for r in records],
        "table": table_rows(records),
    }


def print_report(records: Sequence[RunRecord], env_id: str, budget_s: float) -> None:
    """The side-by-side table and how to read it."""
    from rich.console import Console
    from rich.table import Table

    con = Console()
    if not con.is_terminal:  # rich assumes 80 columns when piped
        con = Console(width=120)
    table = Table(title=f"{env_id}: {budget_s / 60:g}-minute budget, one run at a time")
    for c in ("impl", "seed", "minute", "env steps", "env steps/s", "eval return", "eval at s"):
        table.add_column(c, justify="left" if c in ("impl", "eval return") else "right")
    table.add_column("stop", justify="left")
    for row in table_rows(records):
        table.add_row(
            row["impl"],
            str(row["seed"]),
            row["minute"],
            _fmt(row["env_steps"], ",d"),
            _fmt(row["env_steps_per_s"], ",.0f"),
            format_return(row["return_mean"], row["return_std"], row["episodes"]),
            _fmt(row["eval_at_s"], ".0f"),
            row["note"],
            style="bold" if row["minute"] == "final" else None,
        )
    con.print(table)
    con.print(
        "minute: the checkpoint; env steps/s: env steps / seconds since the process launched. "
        "eval return: greedy mean ± std over the episodes in brackets; rlfleet's is its latest "
        "periodic evaluation finished by that minute (finished at 'eval at s'), SB3's is taken "
        "at the minute. SB3's clock excludes its own in-process evaluations (favours SB3). "
        "final: the final evaluation after the budget."
    )
