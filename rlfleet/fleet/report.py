"""The run report: what the roles say, turned into the run's result, metric rows, the solve
criterion and the budgets. No processes, no sockets: the launcher feeds it status messages
(``kind``, ``meta``) and asks it what to write and whether to stop, so it is tested with fake
messages.

Status messages (every role sends small codec maps; see the shells in
:mod:`rlfleet.agents.common`):

* ``actor_stats`` -- cumulative env steps of one actor incarnation, its finished episodes and
  push latency since the last report, transport drops and backlog;
* ``learner_stats`` -- updates, version, named ``metrics``, ``progress`` fields and a ``notice``;
* ``eval`` / ``final_eval`` -- the evaluator's results;
* ``checkpoint`` / ``stopped`` / ``budget_reached`` / ``error`` -- the learner's events.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Actor ids: ``(index, incarnation)`` locally, ``("remote:<member>", 0)`` for other hosts.
ActorKey = tuple[int | str, int]


@dataclass
class RunResult:
    """What a finished run reports (also written to final_eval.json)."""

    run_dir: str
    env_steps: int = 0
    updates: int = 0
    wall_s: float = 0.0
    solved: bool = False
    solved_at_s: float | None = None
    solved_at_env_steps: int | None = None
    solved_at_unix: float | None = None
    final_returns: list[float] = field(default_factory=list)
    final_return_mean: float | None = None
    #: which parameters final_returns are of: "best" (the best-evaluated, what a run that stopped
    #: on solving reached) or "last"; and their version
    final_params: str = "last"
    final_version: int | None = None
    evaluations: list[dict[str, float]] = field(default_factory=list)
    actor_restarts: int = 0
    stop_reason: str = ""
    checkpoint: str | None = None
    transport: str = "local"
    redis_run: str | None = None
    transport_dropped: int = 0
    transport_backlog_peak: int = 0
    #: seconds from launch to the first env step of any actor / the learner's first update
    first_env_step_s: float | None = None
    first_update_s: float | None = None
    #: the Unix time the run's clock starts from (its wall_s, solved_at_s, first_env_step_s ...
    #: are seconds since then): lets a caller add what came before, e.g. interpreter start-up
    start_unix: float | None = None
    placement: str = "processes"
    warnings: list[str] = field(default_factory=list)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


class RunReport:
    """Counters, evaluations and metric rows of one run, from its roles' status messages.

    ``base_env_steps`` and ``wall_offset`` continue a resumed run's counters; ``wall`` is the
    run's clock (seconds, continued across resumes).
    """

    def __init__(
        self,
        config: Any,
        result: RunResult,
        *,
        base_env_steps: int = 0,
        wall: Callable[[], float] = time.monotonic,
        launch_unix: float | None = None,
    ) -> None:
        self.config = config
        self.result = result
        self.base_env_steps = base_env_steps
        self.wall = wall
        self.launch_unix = launch_unix
        result.start_unix = launch_unix
        self.learner: dict[str, Any] = {}  # the latest learner_stats
        self.learner_fresh = False
        self._learner_metrics: dict[str, Any] = {}
        self.learner_error: str | None = None
        self.last_role_error = ""
        self.final_eval: dict[str, Any] | None = None
        self.stopped: dict[str, Any] | None = None
        self.budget_reached = False
        self.last_eval: dict[str, float] | None = None
        self._actor_steps: dict[ActorKey, int] = {}
        # (dropped so far, backlog now) per actor incarnation, as the actors report them
        self._actor_transport: dict[ActorKey, tuple[int, int]] = {}
        self._evals_above = 0
        self._interval: dict[str, list[float]] = {"returns": [], "lengths": [], "push_ms": []}
        self._last_episode_return: float | None = None
        self._speed = (0.0, 0.0)

    # ---- counters ----------------------------------------------------------------------------
    def env_steps(self) -> int:
        return self.base_env_steps + sum(self._actor_steps.values())

    def updates(self) -> int:
        return int(self.learner.get("updates", self.result.updates))

    def has_remote_actors(self) -> bool:
        return any(str(actor).startswith("remote:") for actor, _ in self._actor_steps)

    def transport_counts(self) -> tuple[int, int]:
        """Messages the actors dropped (all incarnations) and hold back now (latest ones)."""
        dropped = sum(d for d, _ in self._actor_transport.values())
        latest: dict[int | str, tuple[int, int]] = {}
        for (actor, incarnation), (_, backlog) in self._actor_transport.items():
            if actor not in latest or incarnation >= latest[actor][0]:
                latest[actor] = (incarnation, backlog)
        return dropped, sum(backlog for _, backlog in latest.values())

    # ---- messages ----------------------------------------------------------------------------
    def on_actor_stats(self, actor: ActorKey, meta: dict[str, Any]) -> None:
        """Counters of one actor (cumulative per incarnation) and its episodes since last time.
        Raises KeyError / TypeError / ValueError on a well-formed message with wrong fields."""
        steps = int(meta["env_steps"])
        dropped, backlog = int(meta.get("dropped", 0)), int(meta.get("backlog", 0))
        returns = [float(r) for r in meta.get("episode_returns", [])]
        lengths = [float(n) for n in meta.get("episode_lengths", [])]
        push_ms = float(meta.get("push_latency_ms", 0.0))
        first = meta.get("first_step_unix")
        self._actor_steps[actor] = steps
        self.result.first_env_step_s = self._since_launch(first, self.result.first_env_step_s)
        self._actor_transport[actor] = (dropped, backlog)
        dropped, backlog = self.transport_counts()
        self.result.transport_dropped = dropped
        self.result.transport_backlog_peak = max(self.result.transport_backlog_peak, backlog)
        self._interval["returns"].extend(returns)
        self._interval["lengths"].extend(lengths)
        self._interval["push_ms"].append(push_ms)

    def on_message(self, kind: str, meta: dict[str, Any]) -> None:
        """Any status message other than ``hello`` and ``actor_stats``."""
        role, index = str(meta.get("role")), meta.get("index", 0)
        if kind == "learner_stats":
            self.learner = meta
            # reports that arrive between two rows merge (a later one may lack what an earlier
            # one measured, e.g. the final report after the last update); a row takes them all
            metrics = meta.get("metrics") or {}
            self._learner_metrics = {
                **(self._learner_metrics if self.learner_fresh else {}),
                **metrics,
            }
            self.learner_fresh = True  # not yet in a metric row
            self.result.updates = int(meta["updates"])
            self.result.first_update_s = self._since_launch(
                meta.get("first_update_unix"), self.result.first_update_s
            )
        elif kind == "eval":
            self.on_eval(meta)
        elif kind == "final_eval":
            self.final_eval = meta
        elif kind == "stopped":
            self.stopped = meta
            self.result.checkpoint = meta.get("path")
            self.result.updates = int(meta.get("updates", self.result.updates))
        elif kind == "checkpoint":
            self.result.checkpoint = meta.get("path")
        elif kind == "budget_reached":
            self.budget_reached = True
        elif kind == "error":
            if role == "learner":
                self.learner_error = str(meta.get("message"))
            self.last_role_error = f"{role}[{index}]: {meta.get('message')}"

    def _since_launch(self, unix: Any, earliest: float | None) -> float | None:
        """Seconds from launch to ``unix`` (a role's clock reading), keeping the earliest."""
        if self.launch_unix is None or not isinstance(unix, (int, float)) or isinstance(unix, bool):
            return earliest
        seconds = round(float(unix) - self.launch_unix, 3)
        return seconds if earliest is None else min(earliest, seconds)

    def on_eval(self, meta: dict[str, Any]) -> None:
        record = {
            "wall_s": round(self.wall(), 3),
            "env_steps": self.env_steps(),
            "updates": self.result.updates,
            "return_mean": float(meta["return_mean"]),
            "return_std": float(meta["return_std"]),
            "version": int(meta["version"]),
        }
        self.result.evaluations.append(record)
        self.last_eval = record
        ec = self.config.eval
        if ec.solve_threshold and not self.result.solved:
            above = record["return_mean"] >= ec.solve_threshold
            self._evals_above = self._evals_above + 1 if above else 0
            if self._evals_above >= ec.solve_consecutive:
                self.result.solved = True
                self.result.solved_at_s = record["wall_s"]
                self.result.solved_at_env_steps = record["env_steps"]
                self.result.solved_at_unix = time.time()

    def settle_final(self) -> dict[str, Any] | None:
        """Put the final evaluation in the result: of the best-evaluated parameters when the run
        stopped on solving (they solved; the learner may have moved on since), else of the last
        ones. Returns the ``final_eval`` section of final_eval.json (both, when they differ)."""
        fe = self.final_eval
        if fe is None:
            return None
        best = fe.get("best")
        use_best = best is not None and self.result.stop_reason == "solved"
        chosen = best if use_best else fe
        returns = [float(r) for r in chosen["returns"]]
        self.result.final_returns = returns
        self.result.final_return_mean = sum(returns) / len(returns)
        self.result.final_params = "best" if use_best else "last"
        self.result.final_version = int(chosen["version"])
        section = {k: fe.get(k) for k in ("returns", "lengths", "version", "seconds", "video")}
        return {**section, "best": best}

    def eval_row(self) -> dict[str, float]:
        """The metric values of the latest evaluation."""
        assert self.last_eval is not None
        return {
            "eval/return_mean": self.last_eval["return_mean"],
            "eval/return_std": self.last_eval["return_std"],
        }

    # ---- decisions ---------------------------------------------------------------------------
    def budget_stop(self) -> str | None:
        """Why the run should stop now (a budget, or solved), or None."""
        rc = self.config.run
        if rc.total_env_steps and self.env_steps() >= rc.total_env_steps:
            return "env step budget"
        if rc.max_seconds and self.wall() >= rc.max_seconds:
            return "time budget"
        if self.budget_reached:
            return "update budget"
        if rc.stop_on_solve and self.result.solved:
            return "solved"
        return None

    # ---- rows and snapshots ------------------------------------------------------------------
    def row(self, steps_per_s: float, updates_per_s: float, restarts: int) -> dict[str, Any]:
        """One metric row: the interval's actor figures and the learner's latest metrics; starts
        the next interval."""
        dropped, backlog = self.transport_counts()
        values: dict[str, Any] = {
            "env/steps_per_s": steps_per_s,
            "env/episode_return": _mean(self._interval["returns"]),
            "env/episode_length": _mean(self._interval["lengths"]),
            "learner/updates_per_s": updates_per_s,
            "transport/push_latency_ms": _mean(self._interval["push_ms"]),
            "transport/dropped": dropped,
            "transport/backlog": backlog,
            "fleet/actor_restarts": restarts,
        }
        values.update(self._learner_metrics)
        self.learner_fresh = False
        self._speed = (steps_per_s, updates_per_s)
        if values["env/episode_return"] is not None:
            self._last_episode_return = values["env/episode_return"]
        self._interval = {"returns": [], "lengths": [], "push_ms": []}
        return values

    def learner_row(self) -> dict[str, Any]:
        """The learner's latest metrics alone (its last report, sent while it stopped)."""
        self.learner_fresh = False
        return dict(self._learner_metrics)

    def snapshot(self, actors: int, restarts: int) -> dict[str, Any]:
        """What the progress line shows."""
        steps_per_s, updates_per_s = self._speed
        return {
            "wall_s": self.wall(),
            "env_steps": self.env_steps(),
            "steps_per_s": steps_per_s,
            "updates": self.result.updates,
            "updates_per_s": updates_per_s,
            "progress": dict(self.learner.get("progress") or {}),
            "notice": self.learner.get("notice"),
            "episode_return": self._last_episode_return,
            "last_eval": self.last_eval["return_mean"] if self.last_eval else None,
            "solved_at_s": self.result.solved_at_s,
            "actors": actors,
            "restarts": restarts,
            "first_env_step_s": self.result.first_env_step_s,
            "first_update_s": self.result.first_update_s,
        }
