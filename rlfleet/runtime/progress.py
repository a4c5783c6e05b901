"""Live progress of a run: a rich status line on a terminal, a plain line every few seconds
otherwise (CI logs, files)."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from rlfleet.runtime.apex_config import ApexConfig

#: Seconds without a batch from the replay service before the progress line says so.
SERVICE_WAIT_NOTICE_S = 10.0


def _fmt_time(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _fmt(value: float | None, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


class Progress:
    """Env steps, steps/s, updates/s, replay size, last eval and ETA, refreshed ~4x a second."""

    def __init__(self, config: ApexConfig, enabled: bool = True) -> None:
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
        solved = f"  solved at {s['solved_at_s']:.1f}s" if s.get("solved_at_s") else ""
        pretrain = s.get("pretrain")
        if pretrain and pretrain[0] < pretrain[1]:  # DQfD phase I: no actor acts yet
            return (
                f"{self.config.env.id}  {_fmt_time(s['wall_s'])}  pre-training on "
                f"demonstrations: update {pretrain[0]:,} of {pretrain[1]:,}"
            )
        waited = s.get("replay_service_wait_s")
        if waited is not None and waited >= SERVICE_WAIT_NOTICE_S:
            # The learner samples through `rlfleet replay`: without it nothing moves.
            return (
                f"{self.config.env.id}  {_fmt_time(s['wall_s'])}  no batch from the replay "
                f"service for {waited:.0f} s: is `rlfleet replay --redis URL --run NAME` running "
                f"for this run?  updates {_fmt(s['updates'])}  env steps {_fmt(s['env_steps'])}"
            )
        buffer = (  # IMPALA has no replay: what waits for the learner is unrolls
            f"replay {_fmt(s['replay_size'])}"
            if s.get("queued_unrolls") is None
            else f"queued unrolls {_fmt(s['queued_unrolls'])}"
        )
        return (
            f"{self.config.env.id}  {_fmt_time(s['wall_s'])}  "
            f"env steps {_fmt(s['env_steps'])} ({_fmt(s['steps_per_s'])}/s)  "
            f"updates {_fmt(s['updates'])} ({_fmt(s['updates_per_s'])}/s)  "
            f"{buffer}  "
            f"train return {_fmt(s['episode_return'], '.1f')}  "
            f"last eval {_fmt(s['last_eval'], '.1f')}  "
            f"actors {s['actors']} (restarts {s['restarts']})  ETA {_fmt_time(self.eta(s))}{solved}"
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
