"""The local launcher: one learner, N actors, an evaluator (and an agent's service, when the run
has one) on this host, as processes or as threads.

It owns the run folder (config, metrics, final evaluation), reads the roles' status links into
the :class:`~rlfleet.fleet.report.RunReport`, lets the :class:`~rlfleet.fleet.supervisor.Supervisor`
restart what dies (a dead learner ends the run with its error), applies the stop conditions
(budgets, solve criterion, Ctrl-C) and shuts the fleet down in order: actors, then the learner
(final parameters + checkpoint), then the service, then the final evaluation.

It never names an algorithm, and in the default process placement it never imports torch: roles
start from a forkserver that preloads it once.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from rlfleet import atomic
from rlfleet.agents import registry
from rlfleet.agents.common.checkpoint import check_resumable
from rlfleet.config import dumps_toml, to_dict
from rlfleet.errors import CodecError, RlfleetError
from rlfleet.fleet import bootstrap, rundir
from rlfleet.fleet.addresses import FleetAddresses
from rlfleet.fleet.interrupts import InterruptHold, shutdown_notice
from rlfleet.fleet.metrics import MetricsWriter
from rlfleet.fleet.prepare import prepare_run
from rlfleet.fleet.progress import Progress
from rlfleet.fleet.redis_run import RedisRun, open_redis_run
from rlfleet.fleet.report import RunReport, RunResult
from rlfleet.fleet.supervisor import Placement, ProcessPlacement, Supervisor, ThreadPlacement
from rlfleet.transport.codec import decode
from rlfleet.transport.local import AcceptLoop, send_command
from rlfleet.transport.ports import CMD_FINAL_EVAL, CMD_STOP

__all__ = ["LocalFleet", "RunResult", "default_num_actors", "warm_up"]


def warm_up() -> None:
    """Start the forkserver now, so its imports overlap with the launcher's own setup."""
    from multiprocessing import forkserver

    ProcessPlacement(bootstrap.preload_modules())
    forkserver.ensure_running()


def default_num_actors() -> int:
    """Actors to run when the config says 0: one per core beyond the learner's, at least one."""
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    return max(1, cores - 1)


class LocalFleet:
    """Run one training job on this host."""

    def __init__(
        self,
        config: Any,
        run_dir: str | Path,
        *,
        resume_from: str | None = None,
        start_time: float | None = None,
        show_progress: bool = True,
        redis_url: str | None = None,
        local_actors: int | None = None,
        local_service: bool = True,
        in_process: bool = False,
        on_event: Callable[[str, dict[str, Any]], str | None] | None = None,
    ) -> None:
        """``redis_url`` is needed when ``config.transport.kind`` is ``redis``; it is handed to
        the roles but never written to the run folder (it may carry a password).
        ``local_actors`` overrides how many actors start on this host (0: only remote actors,
        ``rlfleet actor`` on other hosts, feed the learner; they report through Redis).
        ``local_service``: with ``transport.replay_service``, start the agent's service here
        (False: it runs elsewhere, e.g. ``rlfleet replay``). ``in_process``: every role a
        thread of this process (debugging, tests, tiny machines). ``on_event(kind, info)`` is
        called in this process on each ``"evaluation"`` (the evaluation's row) and
        ``"checkpoint"`` (its path, updates and whether it is the final one); a non-empty
        string it returns stops the run with that as the stop reason (early stopping)."""
        self.config = config
        self.spec = registry.spec_of(config)
        self.service_here = local_service and config.transport.replay_service
        self.redis_url = redis_url
        #: True when the Redis server was started for this run alone (see open_redis_run)
        self.redis_private = False
        self.run_dir = Path(run_dir)
        self.resume_from = resume_from
        self.t0 = start_time if start_time is not None else time.time()
        self.show_progress = show_progress
        self.in_process = in_process
        if local_actors is not None:
            self.num_actors = local_actors
        else:
            self.num_actors = config.actor.num_actors or default_num_actors()
        self.result = RunResult(run_dir=str(self.run_dir))
        self._wall_offset = 0.0
        self.report = RunReport(config, self.result, wall=self._wall, launch_unix=self.t0)
        self._links: dict[Connection, tuple[str, int]] = {}
        self._pending: list[Connection] = []
        self._pending_lock = threading.Lock()
        self._redis: RedisRun | None = None
        self.status_rejected = 0
        self.on_event = on_event
        self._event_stop: str | None = None

    # ---- setup -------------------------------------------------------------------------------
    def _prepare_run_dir(self) -> None:
        rundir.clean_run_dir(self.run_dir)  # what a crash or a full disk left half-written
        atomic.write_text(self.run_dir / "config.toml", dumps_toml(to_dict(self.config)))
        if self.resume_from:
            # checked up front (run()); the rows written after the checkpoint are dropped
            counters = rundir.resume_counters(self.run_dir, self.resume_from, self.config)
            self.report.base_env_steps = int(counters["env_steps"])
            self._wall_offset = float(counters["elapsed_s"])
            self.result.updates = int(counters["updates"])

    def _on_connect(self, conn: Connection) -> None:
        with self._pending_lock:
            self._pending.append(conn)

    def _launch(self, kind: str, index: int, incarnation: int) -> tuple[Any, tuple]:
        """The role main and its arguments (plain strings and numbers)."""
        cfg_json = json.dumps(to_dict(self.config))
        seed = self.config.run.seed
        if kind == "actor":
            role_seed = seed * 100_003 + 1000 * (index + 1) + 7919 * incarnation
            args: tuple = (cfg_json, self.addresses, index, self.num_actors, role_seed)
        elif kind == "learner":
            # the run's clock starts at t0 - wall_offset: the learner's checkpoints then carry
            # elapsed_s on the clock of metrics.csv's wall_s (a resume cuts the rows after it)
            args = (
                cfg_json,
                self.addresses,
                str(self.run_dir),
                seed,
                self.resume_from or "",
                self.t0 - self._wall_offset,
            )
        elif kind == "service":
            args = (cfg_json, self.addresses, seed + 313)
        else:
            args = (cfg_json, self.addresses, str(self.run_dir), seed + 77)
        return bootstrap.ROLE_MAINS[kind], args

    def _status_address(self, tmp: Path) -> str:
        """Where the roles' status links dial in: a Unix socket in the run's temp folder (a
        launcher whose roles run on other hosts listens on ``tcp://HOST:0`` instead)."""
        return str(tmp / "status.sock")

    def _placement(self) -> Placement:
        if self.in_process:
            return ThreadPlacement()
        return ProcessPlacement(bootstrap.preload_modules())

    # ---- main loop ---------------------------------------------------------------------------
    def run(self) -> RunResult:
        # refusals before anything is claimed or written: the run folder, the checkpoint to
        # resume from (files, counters, network), then the agent's own checks
        rundir.check_run_dir(self.run_dir, resuming=bool(self.resume_from))
        if self.resume_from:
            check_resumable(self.resume_from, self.config)
        prepare_run(self.config)
        created = rundir.make_run_dir(self.run_dir)  # a folder that cannot be written: a message
        try:  # a bad URL or a taken name fails before anything is written
            self._redis = open_redis_run(
                self.config,
                self.redis_url,
                str(self.run_dir),
                json.dumps(to_dict(self.config)),
                private=self.redis_private,
            )
        except BaseException:
            if created:
                rundir.remove_if_unused(self.run_dir)
            raise
        if self._redis is not None:
            self.result.transport, self.result.redis_run = "redis", self._redis.run
        self._prepare_run_dir()
        tmp = Path(tempfile.mkdtemp(prefix="rlfleet-"))
        authkey_hex = secrets.token_hex(16)
        accept = AcceptLoop(self._status_address(tmp), bytes.fromhex(authkey_hex), self._on_connect)
        self.addresses = FleetAddresses(
            status=accept.address,  # the bound address (a TCP listener picks its port)
            experience=str(tmp / "experience.sock"),
            params_name=f"rlfleet-{os.getpid()}-{secrets.token_hex(4)}",
            authkey_hex=authkey_hex,
            redis_url=(self.redis_url or "") if self._redis is not None else "",
            run=self._redis.run if self._redis is not None else "",
            claim_token=self._redis.token if self._redis is not None else "",
        )
        placement = self._placement()
        self.result.placement = placement.name
        self.supervisor = Supervisor(placement, self._launch)
        self.metrics = MetricsWriter(self.run_dir)
        progress = Progress(self.config, enabled=self.show_progress)
        try:
            self.supervisor.start("learner")
            if self.service_here:
                self.supervisor.start("service")
            for i in range(self.num_actors):
                self.supervisor.start("actor", i)
            self.supervisor.start("evaluator")
            self.result.stop_reason = self._supervise(progress)
            self._shutdown(progress)
        except KeyboardInterrupt:
            self.result.stop_reason = "interrupted"
            self._shutdown(progress)
        finally:
            progress.close()
            accept.close()
            self.metrics.close()
            self.supervisor.terminate_all()
            shutil.rmtree(tmp, ignore_errors=True)
            self._finish_redis()
        self._write_final()
        if self.report.learner_error:
            raise RlfleetError(f"the learner failed: {self.report.learner_error}")
        if self._redis is not None and self._redis.lost:
            raise RlfleetError(
                f"{self._redis.lost}; this run stopped and saved its checkpoint in "
                f"{self.run_dir / 'checkpoints'} (continue it later with --resume {self.run_dir} "
                "under another --run NAME); the other host's Redis keys were left alone"
            )
        return self.result

    def _finish_redis(self) -> None:
        if self._redis is None:
            return
        remote = self.report.has_remote_actors() or (
            self.config.transport.replay_service and not self.service_here
        )
        problem = self._redis.finish(
            self.result.stop_reason or "interrupted",
            wait_for_actors_s=self.config.transport.block_timeout_s + 5.0 if remote else 0.0,
        )
        if problem:
            self.result.warnings.append(problem)

    def _wall(self) -> float:
        return self._wall_offset + time.time() - self.t0

    def _restarts(self) -> int:
        return self.supervisor.restarts.get("actor", 0)

    def _supervise(self, progress: Progress) -> str:
        last_log = time.monotonic()
        last_steps, last_updates = self.report.env_steps(), self.result.updates
        while True:
            self._read_links(timeout=0.1)
            self._beat()
            reason = (
                self._check_roles()
                or self._claim_lost()
                or self.report.budget_stop()
                or self._event_stop
            )
            now = time.monotonic()
            if now - last_log >= self.config.run.log_interval_s or reason:
                dt = now - last_log
                steps, updates = self.report.env_steps(), self.report.updates()
                row = self.report.row(
                    (steps - last_steps) / dt, (updates - last_updates) / dt, self._restarts()
                )
                self.metrics.write(self._wall(), steps, self.result.updates, row)
                last_steps, last_updates, last_log = steps, updates, now
            progress.update(self.report.snapshot(self.num_actors, self._restarts()))
            if reason:
                return reason

    def _check_roles(self) -> str | None:
        trouble = self.supervisor.check()
        self.result.actor_restarts = self._restarts()
        if trouble is None:
            return None
        reason, detail = trouble
        if self.report.learner_error is None:
            last = self.report.last_role_error
            self.report.learner_error = f"{detail}: {last}" if last else detail
        return reason

    def _claim_lost(self) -> str | None:
        """Why to stop once another learner host holds this Redis run's name, else None."""
        if self._redis is None or self._redis.beat():
            return None
        return "run name lost"

    def _beat(self) -> None:
        """Publish the run's counters in its Redis status hash (the claim is kept by a thread of
        :class:`RedisRun`), and take in what remote roles reported."""
        if self._redis is None:
            return
        version = self.report.learner.get("version")
        self._redis.publish_counters(  # rate-limited inside; read by `rlfleet evaluator`
            env_steps=self.report.env_steps(),
            updates=self.result.updates,
            **({"learner_version": int(version)} if version is not None else {}),
        )
        for raw in self._redis.events():
            try:
                message = decode(raw, kinds={"actor_stats", "error"})
            except CodecError as exc:
                self.status_rejected += 1
                self.report.last_role_error = f"rejected remote status message: {exc}"
                continue
            member = str(message.meta.get("member", "?"))
            if message.kind == "actor_stats":
                try:
                    self.report.on_actor_stats((f"remote:{member}", 0), message.meta)
                except (KeyError, TypeError, ValueError) as exc:  # well-formed, wrong fields
                    self.status_rejected += 1
                    self.report.last_role_error = f"rejected remote actor_stats: {exc!r}"
            else:
                self.report.last_role_error = f"remote {member}: {message.meta.get('message')}"

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
                self.report.last_role_error = f"rejected status message: {exc}"
                continue
            try:
                self._handle(conn, message.kind, message.meta)  # type: ignore[arg-type]
            except (KeyError, TypeError, ValueError) as exc:  # well-formed, wrong fields
                self.status_rejected += 1
                self.report.last_role_error = f"rejected {message.kind}: {exc!r}"

    def _handle(self, conn: Connection, kind: str, meta: dict[str, Any]) -> None:
        role, index = str(meta.get("role")), int(meta.get("index", 0))
        if kind == "hello":
            self._links[conn] = (role, index)
            known = self.supervisor.get(role, index)
            if known is not None:
                known.link = conn
        elif kind == "actor_stats":
            known = self.supervisor.get("actor", index)
            self.report.on_actor_stats((index, known.incarnation if known else 0), meta)
        else:
            self.report.on_message(kind, meta)
            if kind == "eval":
                self.metrics.write(
                    self.report.last_eval["wall_s"],
                    self.report.last_eval["env_steps"],
                    self.report.last_eval["updates"],
                    self.report.eval_row(),
                )
            self._event(kind, meta)

    def _event(self, kind: str, meta: dict[str, Any]) -> None:
        """Evaluations and checkpoints to ``on_event``; its first stop reason is kept."""
        if self.on_event is None:
            return
        if kind == "eval" and self.report.last_eval is not None:
            info: dict[str, Any] = {**self.report.last_eval, "solved": self.result.solved}
            name = "evaluation"
        elif kind in ("checkpoint", "stopped") and meta.get("path"):
            info = {
                "path": str(meta["path"]),
                "updates": self.report.updates(),
                "env_steps": self.report.env_steps(),
                "wall_s": round(self._wall(), 3),
                "final": kind == "stopped",
            }
            name = "checkpoint"
        else:
            return
        reason = self.on_event(name, info)
        if reason and self._event_stop is None:
            self._event_stop = str(reason)

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
        for role in self.supervisor.of_kind(kind):
            if role.link is not None:
                send_command(role.link, command)

    def _stop_role(self, kind: str, done, timeout: float) -> None:
        role = self.supervisor.get(kind)
        if role is not None and role.handle.is_alive():
            self._command(kind, CMD_STOP)
            self._wait_for(lambda: done() or not role.handle.is_alive(), timeout)
            role.handle.join(timeout=10.0)

    def _shutdown(self, progress: Progress) -> None:
        """Stop the roles in order. Ctrl-C meanwhile does not kill them: the learner always
        saves its checkpoint; a press after that skips only the final evaluation."""
        saved = threading.Event()
        with InterruptHold(shutdown_notice(saved)) as hold:
            self._stop_roles(progress, hold, saved)

    def _stop_roles(self, progress: Progress, hold: InterruptHold, saved: threading.Event) -> None:
        progress.message(f"stopping ({self.result.stop_reason or 'interrupted'}) ...")
        self._command("actor", CMD_STOP)
        if self._redis is not None:  # actors on other hosts: the run's stop flag
            self._redis.request_stop(self.result.stop_reason or "interrupted")
        self.supervisor.join("actor", timeout=5.0)
        self._stop_role("learner", lambda: self.report.stopped is not None, 120.0)
        saved.set()
        if self.report.learner_fresh:  # the learner's final report: a short run's only one
            steps = self.report.env_steps()
            self.metrics.write(self._wall(), steps, self.result.updates, self.report.learner_row())
        presses = hold.presses
        self._stop_role("service", lambda: False, 10.0)  # the learner needed it until now
        evaluator = self.supervisor.get("evaluator")
        alive = evaluator is not None and evaluator.handle.is_alive()
        if alive and self.report.learner_error is None:
            progress.message("final evaluation ...")
            self._command("evaluator", CMD_FINAL_EVAL)
            self._wait_for(
                lambda: (
                    self.report.final_eval is not None
                    or not evaluator.handle.is_alive()
                    or hold.presses > presses
                ),
                600.0,
            )
        self._command("evaluator", CMD_STOP)
        self._read_links(timeout=0.05)
        self.supervisor.join("evaluator", timeout=5.0)
        self.result.env_steps = self.report.env_steps()
        self.result.wall_s = round(self._wall(), 3)

    def _write_final(self) -> None:
        section = self.report.settle_final()
        payload = dict(vars(self.result))
        if section is not None:
            payload["final_eval"] = section
        payload["config_env"] = self.config.env.id
        payload["num_actors"] = self.num_actors
        atomic.write_text(self.run_dir / "final_eval.json", json.dumps(payload, indent=1))
