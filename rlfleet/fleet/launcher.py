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
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from rlfleet import atomic
from rlfleet.agents import registry
from rlfleet.config import dumps_toml, to_dict
from rlfleet.errors import RlfleetError
from rlfleet.fleet import rundir
from rlfleet.fleet.addresses import FleetAddresses
from rlfleet.fleet.events import EventHook, OnEvent
from rlfleet.fleet.forkserver import start_forkserver
from rlfleet.fleet.metrics import MetricsWriter
from rlfleet.fleet.prepare import claim_run
from rlfleet.fleet.progress import Progress
from rlfleet.fleet.redis_run import RedisRun
from rlfleet.fleet.report import RunReport, RunResult
from rlfleet.fleet.role_launch import RoleLaunch
from rlfleet.fleet.shutdown import OrderedShutdown
from rlfleet.fleet.status_intake import StatusLinks, take_remote_events
from rlfleet.fleet.supervisor import Placement, ProcessPlacement, Supervisor, ThreadPlacement
from rlfleet.transport.local import AcceptLoop, send_command
from rlfleet.transport.ports import CMD_STOP

__all__ = ["LocalFleet", "RunResult", "default_num_actors", "warm_up"]


def warm_up() -> None:
    """Start the forkserver now, so its imports overlap with the launcher's own setup."""
    start_forkserver()


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
        on_event: OnEvent | None = None,
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
        self.links = StatusLinks(self.report, self._handle)
        self._redis: RedisRun | None = None
        self.remote_rejected = 0
        self.events = EventHook(on_event, self.report, self.result, self._wall)

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

    def _status_address(self, tmp: Path) -> str:
        """Where the roles' status links dial in: a Unix socket in the run's temp folder (a
        launcher whose roles run on other hosts listens on ``tcp://HOST:0`` instead)."""
        return str(tmp / "status.sock")

    def _placement(self) -> Placement:
        if self.in_process:
            return ThreadPlacement()
        return ProcessPlacement()

    # ---- main loop ---------------------------------------------------------------------------
    def run(self) -> RunResult:
        self._redis = claim_run(
            self.config, self.run_dir, self.resume_from, self.redis_url, self.redis_private
        )
        if self._redis is not None:
            self.result.transport, self.result.redis_run = "redis", self._redis.run
        self._prepare_run_dir()
        tmp = Path(tempfile.mkdtemp(prefix="rlfleet-"))
        authkey_hex = secrets.token_hex(16)
        accept = AcceptLoop(
            self._status_address(tmp), bytes.fromhex(authkey_hex), self.links.on_connect
        )
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
        launch = RoleLaunch(
            config_json=json.dumps(to_dict(self.config)),
            addresses=self.addresses,
            run_dir=str(self.run_dir),
            seed=self.config.run.seed,
            num_actors=self.num_actors,
            resume_from=self.resume_from or "",
            clock_start=self.t0 - self._wall_offset,
        )
        self.supervisor = Supervisor(placement, launch)
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
            self.links.read(timeout=0.1)
            self._beat()
            reason = (
                self._check_roles()
                or self._claim_lost()
                or self.report.budget_stop()
                or self.events.stop
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
        self.remote_rejected += take_remote_events(self._redis.events(), self.report)

    def _handle(self, conn: Connection, kind: str, meta: dict[str, Any]) -> None:
        role, index = str(meta.get("role")), int(meta.get("index", 0))
        if kind == "hello":
            self.links.name(conn, role, index)
            known = self.supervisor.get(role, index)
            if known is not None:
                known.link = conn
            if self.result.stop_reason and role in ("actor", "learner"):
                # came up (or back) after the stop was sent, which reached only the roles with
                # a link: a budget shorter than start-up, or a restarted Ray actor. Without this
                # the shutdown would wait out its timeout for the learner's last checkpoint.
                send_command(conn, CMD_STOP)
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
            self.events(kind, meta)

    # ---- shutdown ----------------------------------------------------------------------------
    def _pump(self) -> None:
        """Read what the roles report while waiting for them."""
        self.links.read(timeout=0.05)
        self._beat()

    def _shutdown(self, progress: Progress) -> None:
        """Stop the roles in order (:class:`~rlfleet.fleet.shutdown.OrderedShutdown`)."""
        stop = OrderedShutdown(
            self.supervisor,
            self.report,
            self.links,
            self._pump,
            self._write_learner_row,
            self._redis,
        )
        stop(self.result.stop_reason or "interrupted", progress)
        self.result.env_steps = self.report.env_steps()
        self.result.wall_s = round(self._wall(), 3)

    def _write_learner_row(self) -> None:
        steps = self.report.env_steps()
        self.metrics.write(self._wall(), steps, self.result.updates, self.report.learner_row())

    def _write_final(self) -> None:
        section = self.report.settle_final()
        payload = dict(vars(self.result))
        if section is not None:
            payload["final_eval"] = section
        payload["config_env"] = self.config.env.id
        payload["num_actors"] = self.num_actors
        atomic.write_text(self.run_dir / "final_eval.json", json.dumps(payload, indent=1))
