"""Live progress of a run: a rich status line on a terminal, a plain line every few seconds
otherwise (CI logs, files)."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

#: Seconds of a run during which the progress line shows its start-up times.
STARTUP_SHOWN_S = 60.0


def _fmt_time(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _fmt(value: float | None, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


class Progress:
    """Env steps, steps/s, updates/s, the learner's own fields (replay size, queued unrolls, ...),
    last eval and ETA, refreshed ~4x a second. A learner's ``notice`` (pre-training, a missing
    replay service) replaces the counters it would leave at zero."""

    def __init__(self, config: Any, enabled: bool = True) -> None:
        self.config = config
        self.enabled = enabled
        self.console = Console(stderr=True)
        self._live: Live | None = None
        self._last_plain = 0.0
        if enabled and self.console.is_terminal:
            self._live = Live(console=self.console, refresh_per_second=4, transient=False)
            self._live.start()

    def eta(self, s: dict[str, Any]) -> float | None:
        rc = self.config.run
        candidates = []
        if rc.total_env_steps and s["steps_per_s"] > 0:
            candidates.append((rc.total_env_steps - s["env_steps"]) / s["steps_per_s"])
        if rc.max_seconds:
            candidates.append(rc.max_seconds - s["wall_s"])
        return max(0.0, min(candidates)) if candidates else None

    def render(self, s: dict[str, Any]) -> str:
        head = f"{self.config.env.id}  {_fmt_time(s['wall_s'])}"
        if s.get("notice"):
            return (
                f"{head}  {s['notice']}  updates {_fmt(s['updates'])}  "
                f"env steps {_fmt(s['env_steps'])}"
            )
        solved = f"  solved at {s['solved_at_s']:.1f}s" if s.get("solved_at_s") else ""
        if not s["env_steps"] and not s.get("notice"):  # say what the first seconds are spent on
            return f"{head}  starting: roles import torch, the learner builds its network ..."
        start = ""
        if s.get("wall_s", 0.0) < STARTUP_SHOWN_S:
            firsts = (
                ("first env step", s.get("first_env_step_s")),
                ("first update", s.get("first_update_s")),
            )
            start = "".join(f"  {name} {value:.1f}s" for name, value in firsts if value is not None)
        fields = "".join(
            f"{label} {_fmt(value)}  " for label, value in (s.get("progress") or {}).items()
        )
        return (
            f"{head}  "
            f"env steps {_fmt(s['env_steps'])} ({_fmt(s['steps_per_s'])}/s)  "
            f"updates {_fmt(s['updates'])} ({_fmt(s['updates_per_s'])}/s)  "
            f"{fields}"
            f"train return {_fmt(s['episode_return'], '.1f')}  "
            f"last eval {_fmt(s['last_eval'], '.1f')}  "
            f"actors {s['actors']} (restarts {s['restarts']})  ETA {_fmt_time(self.eta(s))}{solved}"
            f"{start}"
        )

    def update(self, snapshot: dict[str, Any]) -> None:
        if not self.enabled:
            return
        line = self.render(snapshot)
        if self._live is not None:
            self._live.update(Text(line))
        elif time.monotonic() - self._last_plain >= 5.0:
            print(line, file=sys.stderr, flush=True)
            self._last_plain = time.monotonic()

    def message(self, text: str) -> None:
        if self.enabled:
            self.console.print(text)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
