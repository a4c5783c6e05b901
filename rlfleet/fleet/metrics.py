"""Run metrics: one long-format CSV and TensorBoard event files, written by the launcher only.

``metrics.csv`` has the columns ``wall_s, env_steps, updates, name, value``; ``wall_s`` counts
from the start of the run (continued across resumes; the rows written after the checkpoint a run
resumes from are dropped first, :func:`truncate_metrics`). TensorBoard gets the same scalars with the
environment step as x-axis. Writing goes through tensorboard's own event writer, so the
launcher never imports torch.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from rlfleet import atomic

COLUMNS = ("wall_s", "env_steps", "updates", "name", "value")


class MetricsWriter:
    """Appends metric rows; safe to reopen on resume (the CSV header is written once)."""

    def __init__(self, run_dir: str | Path, tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / "metrics.csv"
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._fh = open(self.path, "a", newline="")
        self._csv = csv.writer(self._fh)
        if new:
            self._csv.writerow(COLUMNS)
        self._tb = None
        if tensorboard:
            from tensorboard.summary.writer.event_file_writer import EventFileWriter

            self._tb = EventFileWriter(str(Path(run_dir) / "tensorboard"))

    def write(self, wall_s: float, env_steps: int, updates: int, values: dict[str, float]) -> None:
        """Write one row per finite metric value."""
        rows = [
            (round(wall_s, 3), env_steps, updates, name, value)
            for name, value in values.items()
            if value is not None and math.isfinite(value)
        ]
        self._csv.writerows(rows)
        self._fh.flush()
        if self._tb is not None and rows:
            from tensorboard.compat.proto.event_pb2 import Event
            from tensorboard.compat.proto.summary_pb2 import Summary

            summary = Summary(
                value=[Summary.Value(tag=name, simple_value=float(v)) for _, _, _, name, v in rows]
            )
            import time

            self._tb.add_event(Event(wall_time=time.time(), step=int(env_steps), summary=summary))
            self._tb.flush()

    def close(self) -> None:
        self._fh.close()
        if self._tb is not None:
            self._tb.close()


def truncate_metrics(run_dir: str | Path, after_wall_s: float) -> int:
    """Drop the rows of ``metrics.csv`` written after ``after_wall_s`` on the run's clock (and
    rows a crash cut short), rewriting the file atomically; returns how many were dropped. A
    resumed run calls this with its checkpoint's ``elapsed_s``: the rows of the lost stretch
    after that checkpoint would otherwise overlap the resumed ones."""
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        return 0
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return 0
    limit = round(after_wall_s, 3)  # rows carry wall_s rounded to the millisecond
    kept = [row for row in rows[1:] if _wall(row) <= limit]
    dropped = len(rows) - 1 - len(kept)
    if dropped:
        out = io.StringIO()
        csv.writer(out).writerows([rows[0], *kept])
        atomic.write_text(path, out.getvalue())
    return dropped


def last_env_steps(run_dir: str | Path) -> int:
    """The ``env_steps`` of the last complete row of ``metrics.csv`` (0 without one)."""
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        return 0
    last = 0
    with open(path, newline="") as fh:
        for row in csv.reader(fh):
            if len(row) == len(COLUMNS) and row[1].isdigit():
                last = int(row[1])
    return last


def _wall(row: list[str]) -> float:
    """A row's ``wall_s``; +inf for a row that is not complete (a crash mid-write)."""
    try:
        return float(row[0]) if len(row) == len(COLUMNS) else math.inf
    except ValueError:
        return math.inf


def read_metrics(run_dir: str | Path) -> dict[str, list[tuple[float, int, int, float]]]:
    """Metrics of a run as ``{name: [(wall_s, env_steps, updates, value), ...]}``."""
    out: dict[str, list[tuple[float, int, int, float]]] = {}
    path = Path(run_dir) / "metrics.csv"
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["name"], []).append(
                (
                    float(row["wall_s"]),
                    int(row["env_steps"]),
                    int(row["updates"]),
                    float(row["value"]),
                )
            )
    return out
