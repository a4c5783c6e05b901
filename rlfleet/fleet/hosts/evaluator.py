"""``rlfleet evaluator`` on a host of its own: greedy evaluations of a Redis run's parameters.

It waits for the run (a live learner claim and the run's config in Redis, as ``rlfleet actor``
does), then runs the evaluator role's own loop, :func:`rlfleet.agents.common.evaluator.run_evaluator`,
on parameters fetched with :class:`~rlfleet.transport.redis.RedisParams`: one greedy evaluation
of ``eval.episodes`` episodes on each new parameter version, at most every ``eval.interval_s``
seconds (``--interval``, ``--episodes`` override them). Results go to a local folder:

* ``evaluations.csv`` -- one row per evaluation (version, return mean/std, episode length, ...);
* ``evaluations.json`` -- the same rows plus the run's name, environment and why it ended,
  rewritten atomically after every evaluation;
* ``metrics.csv`` and ``tensorboard/`` -- ``eval/return_mean``, ``eval/return_std`` and
  ``params/version`` in the run folder's long format;
* ``config.toml`` -- the run's config as read from Redis.

It only reads the run's config, parameters and status, and keeps a heartbeat in the run's
``evaluators`` group, which nothing on the learner host waits for: any number of these can run
beside the learner host's own evaluator without changing what it does.

It ends when the run's stop flag is set, when no learner has been alive for ``learner_grace_s``
(a crashed learner host, or a run whose keys were deleted at its end before the flag was seen;
the grace outlasts a Redis restart: :class:`~rlfleet.fleet.liveness.LearnerWatch`), or on
Ctrl-C.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlfleet import atomic
from rlfleet.errors import ConfigError, TransportError
from rlfleet.fleet.liveness import LearnerWatch, wait_for_config, wait_for_learner
from rlfleet.fleet.metrics import MetricsWriter
from rlfleet.transport.ports import CMD_STOP

#: Seconds between the watcher's checks of the stop flag and the learner's claim.
CHECK_INTERVAL_S = 0.2
#: Columns of evaluations.csv.
COLUMNS = (
    "wall_s",
    "unix_time",
    "version",
    "env_steps",
    "updates",
    "return_mean",
    "return_std",
    "length_mean",
    "episodes",
    "seconds",
)


@dataclass
class RemoteEvalResult:
    """What ``rlfleet evaluator`` reports when it ends."""

    run: str
    out_dir: str
    env_id: str = ""
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str = ""


class EvalRecorder:
    """Writes each evaluation to ``evaluations.csv``, ``evaluations.json`` and ``metrics.csv``."""

    def __init__(self, out_dir: Path, result: RemoteEvalResult, episodes: int) -> None:
        self.out_dir = out_dir
        self.result = result
        self.episodes = episodes
        self.t0 = time.monotonic()
        self._csv_fh = open(out_dir / "evaluations.csv", "w", newline="")
        self._csv = csv.DictWriter(self._csv_fh, COLUMNS)
        self._csv.writeheader()
        self._csv_fh.flush()
        self.metrics = MetricsWriter(out_dir)

    def add(self, meta: dict[str, Any], counters: dict[str, str] | None) -> dict[str, Any]:
        """Record one ``eval`` report of :func:`run_evaluator`; ``counters`` is the run's status
        hash (``env_steps``/``updates`` when the learner host publishes them, else 0)."""
        counters = counters or {}
        row = {
            "wall_s": round(time.monotonic() - self.t0, 3),
            "unix_time": round(time.time(), 3),
            "version": int(meta["version"]),
            "env_steps": _int(counters.get("env_steps")),
            "updates": _int(counters.get("updates")),
            "return_mean": float(meta["return_mean"]),
            "return_std": float(meta["return_std"]),
            "length_mean": float(meta["length_mean"]),
            "episodes": self.episodes,
            "seconds": round(float(meta["seconds"]), 3),
        }
        self._csv.writerow(row)
        self._csv_fh.flush()
        self.metrics.write(
            row["wall_s"],
            row["env_steps"],
            row["updates"],
            {
                "eval/return_mean": row["return_mean"],
                "eval/return_std": row["return_std"],
                "params/version": row["version"],
            },
        )
        self.result.evaluations.append(row)
        self.write_json()
        return row

    def write_json(self) -> None:
        """``evaluations.json``: every row so far and the run's details (atomic replace)."""
        atomic.write_text(
            self.out_dir / "evaluations.json", json.dumps(dataclasses.asdict(self.result), indent=1)
        )

    def close(self) -> None:
        self.write_json()
        self._csv_fh.close()
        self.metrics.close()


def _int(value: str | None) -> int:
    try:
        return int(float(value)) if value is not None else 0
    except ValueError:
        return 0


class RunWatch:
    """The evaluator loop's status link: ``poll_command`` says ``stop`` once the run is over,
    ``send("eval", ...)`` records a result.

    A background thread checks the run's stop flag and the learner's claim every
    ``CHECK_INTERVAL_S`` and refreshes this evaluator's heartbeat, so the end of the run is seen
    even while an evaluation is running (the check costs two small Redis reads).
    """

    def __init__(
        self,
        client: Any,
        run: str,
        member: str,
        recorder: EvalRecorder,
        learner_grace_s: float,
    ) -> None:
        from rlfleet.transport.redis import Heartbeat, RunStatus

        self._client, self.run = client, run
        self.recorder = recorder
        self.status = RunStatus(client, run)
        self.learner = LearnerWatch.over_redis(client, run, learner_grace_s)
        self.heartbeat = Heartbeat(client, run, member, group="evaluators")
        self.stop_reason = ""
        self.heartbeat.beat(force=True)  # visible in the group before the first evaluation
        self._stopped = threading.Event()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="rlfleet-run-watch", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while True:
            self.heartbeat.beat()  # rate-limited inside: a Redis write every ttl / 3 s
            reason = self.learner.end_reason()
            if reason:
                self.stop_reason = reason
                break
            if self._closing.wait(CHECK_INTERVAL_S):
                break
        self._stopped.set()

    def stop(self, reason: str) -> None:
        """End the evaluator from this side (Ctrl-C)."""
        if not self._stopped.is_set():
            self.stop_reason = reason
        self._closing.set()
        self._stopped.set()

    # ---- the StatusLink interface of run_evaluator -------------------------------------------
    def poll_command(self, timeout: float = 0.0) -> str | None:
        return CMD_STOP if self._stopped.wait(timeout) else None

    def send(self, kind: str, **meta: Any) -> None:
        if kind == "eval":
            row = self.recorder.add(meta, self.status.read())
            print(
                f"version {row['version']}: return {row['return_mean']:.1f} "
                f"+- {row['return_std']:.1f} over {row['episodes']} episodes",
                flush=True,
            )

    def close(self) -> None:
        """Stop the watcher and leave the ``evaluators`` group (best effort)."""
        self._closing.set()
        self._thread.join(timeout=5.0)
        try:
            self.heartbeat.leave()
        except TransportError:
            pass


class RemoteEvaluator:
    """Evaluates a Redis run's parameters on this host until the run ends."""

    def __init__(
        self,
        redis_url: str,
        run: str,
        out_dir: str | Path | None = None,
        *,
        interval_s: float | None = None,
        episodes: int | None = None,
        seed: int | None = None,
        learner_grace_s: float = 15.0,
        member: str | None = None,
    ) -> None:
        from rlfleet.transport.redis import connect, prefix

        prefix(run)  # validates the name (ConfigError names the allowed form)
        if interval_s is not None and interval_s <= 0:
            raise ConfigError(f"--interval must be > 0 seconds, got {interval_s}")
        if episodes is not None and episodes < 1:
            raise ConfigError(f"--episodes must be >= 1, got {episodes}")
        if learner_grace_s <= 0:
            raise ConfigError(f"learner grace must be > 0 seconds, got {learner_grace_s}")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.out_dir = Path(out_dir) if out_dir else Path("runs") / f"{run}-eval-{stamp}"
        if (self.out_dir / "evaluations.csv").exists():
            raise ConfigError(
                f"{self.out_dir} already holds evaluations.csv; pick another folder with --out"
            )
        self.run_name = run
        self.interval_s, self.episodes, self.seed = interval_s, episodes, seed
        self.learner_grace_s = learner_grace_s
        self.member = member or f"{_host()}-{os.getpid()}"
        self.client = connect(redis_url, wait=30.0)
        self.result = RemoteEvalResult(run=run, out_dir=str(self.out_dir))

    def _config(self, wait_s: float) -> Any:
        start = time.monotonic()
        wait_for_learner(self.client, self.run_name, wait_s)
        config = wait_for_config(
            self.client, self.run_name, max(0.0, wait_s - (time.monotonic() - start))
        )
        changes: dict[str, Any] = {}
        if self.interval_s is not None:
            changes["interval_s"] = self.interval_s
        if self.episodes is not None:
            changes["episodes"] = self.episodes
        if changes:
            config = dataclasses.replace(config, eval=dataclasses.replace(config.eval, **changes))
        return config

    def run(self, wait_s: float = 120.0, threads: int = 1) -> RemoteEvalResult:
        """Wait for the run, evaluate until it ends; returns what was evaluated and why it ended."""
        import torch

        from rlfleet.agents import registry
        from rlfleet.agents.common.evaluator import run_evaluator
        from rlfleet.config import dumps_toml, to_dict
        from rlfleet.transport.redis import RedisParams
        from rlfleet.transport.redis.roles import default_backoff

        torch.set_num_threads(threads)
        config = self._config(wait_s)
        self.result.env_id = config.env.id
        self.out_dir.mkdir(parents=True, exist_ok=True)
        atomic.clean_stale(self.out_dir)  # what an interrupted write left behind
        atomic.write_text(self.out_dir / "config.toml", dumps_toml(to_dict(config)))
        recorder = EvalRecorder(self.out_dir, self.result, config.eval.episodes)
        watch = RunWatch(self.client, self.run_name, self.member, recorder, self.learner_grace_s)
        params = RedisParams(self.client, self.run_name, backoff=default_backoff())
        # a seed of its own: not the learner host evaluator's episodes over again
        seed = self.seed if self.seed is not None else config.run.seed + 177
        try:
            run_evaluator(
                registry.spec_of(config).make_network,
                config,
                str(self.out_dir),
                seed,
                params,
                watch,
            )
        except KeyboardInterrupt:
            watch.stop("interrupted")
        finally:
            watch.close()
            self.result.stop_reason = watch.stop_reason or "interrupted"
            recorder.close()
            self.client.close()
        return self.result


def _host() -> str:
    import re
    import socket

    # member ids are key parts: letters, digits, . _ - only
    return re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:40].lstrip("._-") or "host"
