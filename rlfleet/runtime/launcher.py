"""The local launcher: one learner, N actors and an evaluator as OS processes on this host.

It owns the run folder (config, metrics, final evaluation), watches the roles (restarting dead
actors and the evaluator; a dead learner ends the run with its error), applies the stop
conditions (env-step / time / update budgets, solve criterion, Ctrl-C) and shuts the fleet down
in order: actors, then the learner (final parameters + checkpoint), then the final evaluation.

The launcher never imports torch: roles start from a forkserver that preloads it once.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from rlfleet.config import dumps_toml, to_dict
from rlfleet.errors import CodecError, RlfleetError
from rlfleet.runtime.apex_config import ApexConfig
from rlfleet.runtime.links import CMD_FINAL_EVAL, CMD_STOP, AcceptLoop, send_command
from rlfleet.runtime.metrics import MetricsWriter
from rlfleet.runtime.progress import Progress
from rlfleet.runtime.wiring import FleetAddresses, RedisRun, open_redis_run
from rlfleet.transport.codec import decode

MAX_RESTARTS_PER_MINUTE = 5


def fleet_context() -> mp.context.BaseContext:
    """The forkserver context roles start from; it imports torch & co. once, up front."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["rlfleet.runtime.roles"])
    return ctx


def warm_up() -> None:
    """Start the forkserver now, so its imports overlap with the launcher's own setup."""
    fleet_context()
    from multiprocessing import forkserver

    forkserver.ensure_running()


def default_num_actors() -> int:
    """Actors to run when the config says 0: one per core beyond the learner's, at least one."""
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    return max(1, cores - 1)


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
    evaluations: list[dict[str, float]] = field(default_factory=list)
    actor_restarts: int = 0
    stop_reason: str = ""
    checkpoint: str | None = None
    transport: str = "local"
    redis_run: str | None = None
    transport_dropped: int = 0
    transport_backlog_peak: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Role:
    kind: str
    index: int
    process: Any
    incarnation: int = 0
    conn: Connection | None = None
    started_at: float = 0.0


class LocalFleet:
    """Run one Ape-X training job on this host."""

    def __init__(
        self,
        config: ApexConfig,
        run_dir: str | Path,
        *,
        resume_from: str | None = None,
        start_time: float | None = None,
        show_progress: bool = True,
        redis_url: str | None = None,
        local_actors: int | None = None,
        local_replay: bool = True,
    ) -> None:
        """``redis_url`` is needed when ``config.transport.kind`` is ``redis``; it is handed to
        the roles but never written to the run folder (it may carry a password).
        ``local_actors`` overrides how many actors start on this host (0: only remote actors,
        ``rlfleet actor`` on other hosts, feed the learner; they report through Redis).
        ``local_replay``: with ``transport.replay_service``, start the replay service here
        (False: it runs elsewhere, ``rlfleet replay``)."""
        self.config = config
        self.replay_here = local_replay and config.transport.replay_service
        self.redis_url = redis_url
        self.run_dir = Path(run_dir)
        self.resume_from = resume_from
        self.t0 = start_time if start_time is not None else time.time()
        self.show_progress = show_progress
        if local_actors is not None:
            self.num_actors = local_actors
        else:
            self.num_actors = config.actor.num_actors or default_num_actors()
        self.result = RunResult(run_dir=str(self.run_dir))
        self._links: dict[Connection, tuple[str, int]] = {}
        self._pending: list[Connection] = []
        self._pending_lock = threading.Lock()
        self._roles: dict[tuple[str, int], _Role] = {}
        self._restart_times: list[float] = []
        self._actor_steps: dict[tuple[int | str, int], int] = {}
        # (dropped so far, backlog now) per actor incarnation, as the actors report them;
        # remote actors are keyed by their run-wide id and incarnation 0
        self._actor_transport: dict[tuple[int | str, int], tuple[int, int]] = {}
        self._redis: RedisRun | None = None
        self._base_env_steps = 0
        self._wall_offset = 0.0
        self._learner_stats: dict[str, Any] = {}
        self._interval = {"returns": [], "lengths": [], "push_ms": []}
        self._evals_above = 0
        self._last_eval: dict[str, float] | None = None
        self._learner_error: str | None = None
        self._final_eval: dict[str, Any] | None = None
        self._learner_stopped: dict[str, Any] | None = None
        self._last_role_error = ""
        self.status_rejected = 0

    # ---- setup -------------------------------------------------------------------------------
    def _prepare_run_dir(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.toml").write_text(dumps_toml(to_dict(self.config)))
        if self.resume_from:
            from rlfleet.runtime.checkpoint import read_state

            counters = read_state(self.resume_from)["counters"]
            self._base_env_steps = int(counters["env_steps"])
            self._wall_offset = float(counters["elapsed_s"])
            self.result.updates = int(counters["updates"])

    def _on_connect(self, conn: Connection) -> None:
        with self._pending_lock:
            self._pending.append(conn)

    def _start(self, kind: str, index: int = 0, incarnation: int = 0) -> None:
        cfg_json = json.dumps(to_dict(self.config))
        seed = self.config.run.seed
        if kind == "actor":
            role_seed = seed * 100_003 + 1000 * (index + 1) + 7919 * incarnation
            target, args = (
                "actor_main",
                (cfg_json, self.addresses, index, self.num_actors, role_seed),
            )
        elif kind == "learner":
            target, args = (
                "learner_main",
                (cfg_json, self.addresses, str(self.run_dir), seed, self.resume_from or ""),
            )
        elif kind == "replay":
            target, args = ("replay_main", (cfg_json, self.addresses, seed + 313))
        else:
            target, args = (
                "evaluator_main",
                (cfg_json, self.addresses, str(self.run_dir), seed + 77),
            )
        from rlfleet.runtime import remote_replay, roles

        module = remote_replay if kind == "replay" else roles
        process = self.ctx.Process(
            target=getattr(module, target), args=args, name=f"rlfleet-{kind}-{index}", daemon=True
        )
        process.start()
        self._roles[(kind, index)] = _Role(
            kind, index, process, incarnation, started_at=time.monotonic()
        )

    # ---- main loop ---------------------------------------------------------------------------
    def run(self) -> RunResult:
        # claim the Redis run first: a bad URL or a taken name fails before anything is written
        self._redis = open_redis_run(
            self.config, self.redis_url, str(self.run_dir), json.dumps(to_dict(self.config))
        )
        if self._redis is not None:
            self.result.transport, self.result.redis_run = "redis", self._redis.run
        self._prepare_run_dir()
        tmp = Path(tempfile.mkdtemp(prefix="rlfleet-"))
        token = secrets.token_hex(4)
        self.addresses = FleetAddresses(
            status=str(tmp / "status.sock"),
            experience=str(tmp / "experience.sock"),
            params_name=f"rlfleet-{os.getpid()}-{token}",
            authkey_hex=secrets.token_hex(16),
            redis_url=(self.redis_url or "") if self._redis is not None else "",
            run=self._redis.run if self._redis is not None else "",
        )
        self.ctx = fleet_context()
        accept = AcceptLoop(self.addresses.status, self.addresses.authkey, self._on_connect)
        self.metrics = MetricsWriter(self.run_dir)
        progress = Progress(self.config, enabled=self.show_progress)
        try:
            self._start("learner")
            if self.replay_here:
                self._start("replay")
            for i in range(self.num_actors):
                self._start("actor", i)
            self._start("evaluator")
            self.result.stop_reason = self._supervise(progress)
            self._shutdown(progress)
        except KeyboardInterrupt:
            self.result.stop_reason = "interrupted"
            self._shutdown(progress)
        finally:
            progress.close()
            accept.close()
            self.metrics.close()
            for role in self._roles.values():
                if role.process.is_alive():
                    role.process.terminate()
            shutil.rmtree(tmp, ignore_errors=True)
            if self._redis is not None:
                remote = any(str(actor).startswith("remote:") for actor, _ in self._actor_steps)
                remote = remote or (self.config.transport.replay_service and not self.replay_here)
                problem = self._redis.finish(
                    self.result.stop_reason or "interrupted",
                    wait_for_actors_s=self.config.transport.block_timeout_s + 5.0
                    if remote
                    else 0.0,
                )
                if problem:
                    self.result.warnings.append(problem)
        self._write_final()
        if self._learner_error:
            raise RlfleetError(f"the learner failed: {self._learner_error}")
        return self.result

    def _wall(self) -> float:
        return self._wall_offset + time.time() - self.t0

    def _env_steps(self) -> int:
        return self._base_env_steps + sum(self._actor_steps.values())

    def _supervise(self, progress: Progress) -> str:
        last_log = time.monotonic()
        last_steps, last_updates = self._env_steps(), self.result.updates
        while True:
            self._read_links(timeout=0.1)
            self._beat()
            reason = self._check_roles() or self._check_budgets()
            now = time.monotonic()
            if now - last_log >= self.config.run.log_interval_s or reason:
                dt = now - last_log
                steps, updates = (
                    self._env_steps(),
                    int(self._learner_stats.get("updates", self.result.updates)),
                )
                self._log_row((steps - last_steps) / dt, (updates - last_updates) / dt)
                last_steps, last_updates, last_log = steps, updates, now
            progress.update(self._snapshot())
            if reason:
                return reason

    def _beat(self) -> None:
        """Keep the Redis run claimed while the fleet lives (rate-limited inside), publish the
        run's counters in its status hash, and take in what remote actors reported."""
        if self._redis is None:
            return
        self._redis.beat()
        version = self._learner_stats.get("version")
        self._redis.publish_counters(  # rate-limited inside; read by `rlfleet evaluator`
            env_steps=self._env_steps(),
            updates=self.result.updates,
            **({"learner_version": int(version)} if version is not None else {}),
        )
        for raw in self._redis.events():
            try:
                message = decode(raw, kinds={"actor_stats", "error"})
            except CodecError as exc:
                self.status_rejected += 1
                self._last_role_error = f"rejected remote status message: {exc}"
                continue
            member = str(message.meta.get("member", "?"))
            if message.kind == "actor_stats":
                try:
                    self._on_actor_stats((f"remote:{member}", 0), message.meta)
                except (KeyError, TypeError, ValueError) as exc:  # well-formed, wrong fields
                    self.status_rejected += 1
                    self._last_role_error = f"rejected remote actor_stats: {exc!r}"
            else:
                self._last_role_error = f"remote actor {member}: {message.meta.get('message')}"

    def _read_links(self, timeout: float) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, []
        for conn in pending:
            self._links[conn] = ("unknown", -1)
        if not self._links:
            time.sleep(timeout)
            return
        for conn in wait(list(self._links), timeout):
            try:
                raw = conn.recv_bytes()  # type: ignore[union-attr]
            except (EOFError, OSError):
                self._links.pop(conn, None)  # type: ignore[arg-type]
                continue
            try:
                message = decode(raw)
            except CodecError as exc:
                self.status_rejected += 1
                self._last_role_error = f"rejected status message: {exc}"
                continue
            self._handle(conn, message.kind, message.meta)  # type: ignore[arg-type]

    def _handle(self, conn: Connection, kind: str, meta: dict[str, Any]) -> None:
        role, index = str(meta.get("role")), int(meta.get("index", 0))
        if kind == "hello":
            self._links[conn] = (role, index)
            if (role, index) in self._roles:
                self._roles[(role, index)].conn = conn
        elif kind == "actor_stats":
            incarnation = (
                self._roles[("actor", index)].incarnation if ("actor", index) in self._roles else 0
            )
            self._on_actor_stats((index, incarnation), meta)
        elif kind == "learner_stats":
            self._learner_stats = meta
            self.result.updates = int(meta["updates"])
        elif kind == "pretrain":  # DQfD phase I: updates on demonstrations before acting
            self._pretrain = (int(meta["done"]), int(meta["total"]))
        elif kind == "eval":
            self._on_eval(meta)
        elif kind == "final_eval":
            self._final_eval = meta
        elif kind == "stopped":
            self._learner_stopped = meta
            self.result.checkpoint = meta.get("path")
            self.result.updates = int(meta.get("updates", self.result.updates))
        elif kind == "checkpoint":
            self.result.checkpoint = meta.get("path")
        elif kind == "budget_reached":
            self._learner_stats["budget_reached"] = True
        elif kind == "error":
            if role == "learner":
                self._learner_error = str(meta.get("message"))
            self._last_role_error = f"{role}[{index}]: {meta.get('message')}"

    def _on_actor_stats(self, actor: tuple[int | str, int], meta: dict[str, Any]) -> None:
        """Counters of one actor (cumulative per process) and its episodes since last time."""
        self._actor_steps[actor] = int(meta["env_steps"])
        self._actor_transport[actor] = (int(meta.get("dropped", 0)), int(meta.get("backlog", 0)))
        dropped, backlog = self._transport_counts()
        self.result.transport_dropped = dropped
        self.result.transport_backlog_peak = max(self.result.transport_backlog_peak, backlog)
        self._interval["returns"].extend(meta.get("episode_returns", []))
        self._interval["lengths"].extend(meta.get("episode_lengths", []))
        self._interval["push_ms"].append(float(meta.get("push_latency_ms", 0.0)))

    def _transport_counts(self) -> tuple[int, int]:
        """Messages the actors dropped (all incarnations) and hold back now (latest ones)."""
        dropped = sum(d for d, _ in self._actor_transport.values())
        latest: dict[int | str, tuple[int, int]] = {}
        for (actor, incarnation), (_, backlog) in self._actor_transport.items():
            if actor not in latest or incarnation >= latest[actor][0]:
                latest[actor] = (incarnation, backlog)
        return dropped, sum(backlog for _, backlog in latest.values())

    def _on_eval(self, meta: dict[str, Any]) -> None:
        record = {
            "wall_s": round(self._wall(), 3),
            "env_steps": self._env_steps(),
            "updates": self.result.updates,
            "return_mean": float(meta["return_mean"]),
            "return_std": float(meta["return_std"]),
            "version": int(meta["version"]),
        }
        self.result.evaluations.append(record)
        self._last_eval = record
        self.metrics.write(
            record["wall_s"],
            record["env_steps"],
            record["updates"],
            {"eval/return_mean": record["return_mean"], "eval/return_std": record["return_std"]},
        )
        ec = self.config.eval
        if ec.solve_threshold and not self.result.solved:
            self._evals_above = (
                self._evals_above + 1 if record["return_mean"] >= ec.solve_threshold else 0
            )
            if self._evals_above >= ec.solve_consecutive:
                self.result.solved = True
                self.result.solved_at_s = record["wall_s"]
                self.result.solved_at_env_steps = record["env_steps"]
                self.result.solved_at_unix = time.time()

    def _check_roles(self) -> str | None:
        for role in list(self._roles.values()):
            if role.process.is_alive():
                continue
            if role.kind == "learner":
                if self._learner_error is None:
                    self._learner_error = f"exited with code {role.process.exitcode}"
                return "learner failed"
            now = time.monotonic()
            self._restart_times = [t for t in self._restart_times if now - t < 60.0] + [now]
            if len(self._restart_times) > MAX_RESTARTS_PER_MINUTE * max(1, self.num_actors):
                self._learner_error = (
                    f"{role.kind} processes keep dying: {self._last_role_error or 'no message'}"
                )
                return "roles keep failing"
            if role.kind == "actor":
                self.result.actor_restarts += 1
            self._start(role.kind, role.index, role.incarnation + 1)
        return None

    def _check_budgets(self) -> str | None:
        rc = self.config.run
        if rc.total_env_steps and self._env_steps() >= rc.total_env_steps:
            return "env step budget"
        if rc.max_seconds and self._wall() >= rc.max_seconds:
            return "time budget"
        if self._learner_stats.get("budget_reached"):
            return "update budget"
        if rc.stop_on_solve and self.result.solved:
            return "solved"
        return None

    def _log_row(self, steps_per_s: float, updates_per_s: float) -> None:
        ls = self._learner_stats
        mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
        values = {
            "env/steps_per_s": steps_per_s,
            "env/episode_return": mean(self._interval["returns"]),
            "env/episode_length": mean(self._interval["lengths"]),
            "learner/updates_per_s": updates_per_s,
            "learner/loss": ls.get("loss"),
            "learner/q_mean": ls.get("q_mean"),
            "learner/wait_fraction": ls.get("wait_fraction"),
            "replay/size": ls.get("replay_size"),
            "replay/samples_per_insert": ls.get("samples_per_insert"),
            "params/version": ls.get("version"),
            "params/version_lag": ls.get("version_lag"),
            "transport/push_latency_ms": mean(self._interval["push_ms"]),
            "transport/rejected": ls.get("rejected"),
            "transport/dropped": self._transport_counts()[0],
            "transport/backlog": self._transport_counts()[1],
            "fleet/actor_restarts": self.result.actor_restarts,
        }
        # algorithm-specific learner metrics (e.g. DQfD's loss parts) under their own names
        values.update(ls.get("metrics") or {})
        self.metrics.write(self._wall(), self._env_steps(), self.result.updates, values)
        self._speed = (steps_per_s, updates_per_s)
        self._last_episode_return = values["env/episode_return"] or getattr(
            self, "_last_episode_return", None
        )
        self._interval = {"returns": [], "lengths": [], "push_ms": []}

    def _snapshot(self) -> dict[str, Any]:
        steps_per_s, updates_per_s = getattr(self, "_speed", (0.0, 0.0))
        return {
            "wall_s": self._wall(),
            "env_steps": self._env_steps(),
            "steps_per_s": steps_per_s,
            "updates": self.result.updates,
            "updates_per_s": updates_per_s,
            "replay_size": self._learner_stats.get("replay_size", 0),
            "queued_unrolls": self._learner_stats.get("queued_unrolls"),  # IMPALA
            "episode_return": getattr(self, "_last_episode_return", None),
            "last_eval": self._last_eval["return_mean"] if self._last_eval else None,
            "solved_at_s": self.result.solved_at_s,
            "actors": self.num_actors,
            "pretrain": getattr(self, "_pretrain", None),
            "replay_service_wait_s": self._learner_stats.get("replay_service_wait_s"),
            "restarts": self.result.actor_restarts,
        }

    # ---- shutdown ----------------------------------------------------------------------------
    def _wait_for(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            self._read_links(timeout=0.05)
            self._beat()
        return predicate()

    def _command(self, kind: str, command: str) -> None:
        for (role_kind, _), role in self._roles.items():
            if role_kind == kind and role.conn is not None:
                send_command(role.conn, command)

    def _shutdown(self, progress: Progress) -> None:
        progress.message(f"stopping ({self.result.stop_reason or 'interrupted'}) ...")
        self._command("actor", CMD_STOP)
        if self._redis is not None:  # actors on other hosts: the run's stop flag
            self._redis.request_stop(self.result.stop_reason or "interrupted")
        for (kind, _), role in self._roles.items():
            if kind == "actor":
                role.process.join(timeout=5.0)
        learner = self._roles.get(("learner", 0))
        if learner is not None and learner.process.is_alive():
            self._command("learner", CMD_STOP)
            self._wait_for(
                lambda: self._learner_stopped is not None or not learner.process.is_alive(), 120.0
            )
            learner.process.join(timeout=10.0)
        replay = self._roles.get(("replay", 0))
        if replay is not None and replay.process.is_alive():  # the learner needed it until now
            self._command("replay", CMD_STOP)
            self._wait_for(lambda: not replay.process.is_alive(), 10.0)
        evaluator = self._roles.get(("evaluator", 0))
        if evaluator is not None and evaluator.process.is_alive() and self._learner_error is None:
            progress.message("final evaluation ...")
            self._command("evaluator", CMD_FINAL_EVAL)
            self._wait_for(
                lambda: self._final_eval is not None or not evaluator.process.is_alive(), 600.0
            )
        self._command("evaluator", CMD_STOP)
        self._read_links(timeout=0.05)
        self.result.env_steps = self._env_steps()
        self.result.wall_s = round(self._wall(), 3)

    def _write_final(self) -> None:
        fe = self._final_eval
        if fe is not None:
            returns = [float(r) for r in fe["returns"]]
            self.result.final_returns = returns
            self.result.final_return_mean = sum(returns) / len(returns)
        payload = dict(vars(self.result))
        if fe is not None:
            payload["final_eval"] = {
                k: fe.get(k) for k in ("returns", "lengths", "version", "seconds", "video")
            }
        payload["config_env"] = self.config.env.id
        payload["num_actors"] = self.num_actors
        tmp = self.run_dir / ".final_eval.json.tmp"
        tmp.write_text(json.dumps(payload, indent=1))
        os.replace(tmp, self.run_dir / "final_eval.json")
