"""The learner loop every agent shares, around the agent's own data threads and update.

An agent's learner is a :class:`LearnerCore` (``spec.make_learner``): it fills a
:class:`BatchQueue` from its data threads (insert / prefetch / collect), and ``learn``\\ s from
one batch at a time. :class:`LearnerShell` does the rest, once for every algorithm:

* runs the core's data-thread bodies in daemon threads, turning an exception in any of them
  into the learner's error (reported, then raised) instead of a silent dead thread;
* takes batches (timing the wait: ``learner/wait_fraction``), counts updates, publishes the
  ``online`` network every ``learner.publish_interval`` updates with a new version;
* writes checkpoints (the core's modules, optimizer, counters, JSON state and an optional
  snapshot folder), periodically, on command and at the end, and restores them;
* reports ``learner_stats`` every ``run.log_interval_s`` with the shared metrics and the core's
  own, obeys the supervisor's commands, and says ``budget_reached`` at ``learner.max_updates``;
* treats a broken link to the supervisor (a killed launcher) as "stop": the last publication
  and checkpoint are written as on any stop, so a killed launcher does not lose the run.

The config must have ``learner.publish_interval``, ``learner.max_updates`` and
``run.{log_interval_s, checkpoint_interval_s, keep_checkpoints}``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from rlfleet.agents.common import checkpoint as ckpt
from rlfleet.config import to_dict
from rlfleet.errors import TransportError
from rlfleet.models.params import flatten_into, param_count
from rlfleet.transport.ports import CMD_CHECKPOINT, CMD_STOP, Inbox, ParamSink, StatusLink

#: The module of ``LearnerCore.modules`` that is published to actors and the evaluator.
ONLINE = "online"


class CheckpointedCounters:
    """A learner's counters: every attribute set in ``__init__`` is saved in checkpoints and
    continued on resume (keeping each field's type). Agents add their own fields."""

    def __init__(self) -> None:
        self.updates = 0
        self.env_steps = 0
        self.version = 0
        self.elapsed_s = 0.0

    def state(self) -> dict[str, float]:
        return dict(vars(self))

    def load(self, state: dict[str, Any]) -> None:
        for key in vars(self):
            if key in state:
                setattr(self, key, type(getattr(self, key))(state[key]))


class BatchQueue:
    """A bounded hand-over from a data thread to the update loop. ``put`` blocks while full
    (that is the backpressure on actors) until :meth:`close`; ``get`` times its own waiting."""

    def __init__(self, maxsize: int) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self.closed = threading.Event()

    def put(self, item: Any) -> bool:
        """Hand ``item`` over; False if the queue was closed first."""
        while not self.closed.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def get(self, timeout: float) -> Any | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def qsize(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        self.closed.set()


class LagMeter:
    """Policy-version lag samples since the last report: learner version minus the version
    that acted."""

    def __init__(self) -> None:
        self._sum = 0.0
        self._count = 0
        self._max: float | None = None
        self._lock = threading.Lock()

    def add(self, lags: np.ndarray) -> None:
        """Record one lag per element of ``lags``."""
        arr = np.asarray(lags, np.float64).ravel()
        if not arr.size:
            return
        with self._lock:
            self._sum += float(arr.sum())
            self._count += arr.size
            top = float(arr.max())
            self._max = top if self._max is None else max(self._max, top)

    def add_total(self, total: float, count: int) -> None:
        """Record ``count`` lags known only by their sum (the maximum stays unknown)."""
        with self._lock:
            self._sum += float(total)
            self._count += int(count)

    def take(self) -> tuple[float | None, float | None]:
        """``(mean, max)`` since the last call (None when nothing was recorded)."""
        with self._lock:
            mean = self._sum / self._count if self._count else None
            top = self._max
            self._sum, self._count, self._max = 0.0, 0, None
        return mean, top


class LearnerCore(Protocol):
    """What one agent's learner provides to :class:`LearnerShell`."""

    counters: CheckpointedCounters
    #: Checkpointed networks by name; ``modules[ONLINE]`` is the one published.
    modules: dict[str, torch.nn.Module]
    optimizer: torch.optim.Optimizer
    #: Filled by the core's data threads, drained by the shell.
    batches: BatchQueue
    #: Held around checkpoint writes (the core's data threads take it around shared state).
    lock: threading.Lock

    def loops(self, inbox: Inbox | None) -> dict[str, Callable[[], None]]:
        """Data-thread bodies by name; each is called repeatedly and must return within ~0.1 s."""

    def learn(self, batch: Any) -> None:
        """One update on ``batch`` (the shell counts it)."""

    def report(self) -> dict[str, Any]:
        """Since the last call: ``metrics`` (named), ``progress`` (label -> value for the
        progress line), ``notice`` (or None), ``rejected`` (messages the core dropped),
        ``version_lag`` (mean, or None)."""

    def state(self) -> dict[str, Any]:
        """JSON-able state saved in checkpoints beside the counters."""

    def load_state(self, state: dict[str, Any], folder: Path) -> None:
        """Continue from a checkpoint's JSON state (``folder`` holds any snapshot)."""

    def snapshot(self) -> Callable[[Path], None] | None:
        """A writer of an extra checkpoint folder (a replay snapshot), or None."""

    def before_serving(self, notice: Callable[[str], None]) -> None:
        """Work before the first publication (DQfD's pre-training); ``notice`` shows progress."""


class LearnerShell:
    """Publication, checkpoints, reports and the update loop around a :class:`LearnerCore`."""

    def __init__(
        self,
        core: LearnerCore,
        config: Any,
        run_dir: str | Path,
        params: ParamSink,
        link: StatusLink,
        inbox: Inbox | None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``clock``: the run's clock in seconds, continued across resumes (the launcher's
        ``wall_s``), recorded as ``elapsed_s`` in checkpoints; default: this learner's time
        since it started serving, added to the restored ``elapsed_s``."""
        self.core, self.config = core, config
        self.clock = clock
        #: The supervisor's link broke (its process died): the loop stops, publishes and saves.
        self.link_lost = False
        self.run_dir = Path(run_dir)
        self.params, self.link, self.inbox = params, link, inbox
        self.counters = core.counters
        self.flat = np.empty(param_count(core.modules[ONLINE]), np.float32)
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self._wait_s = 0.0
        self._learn_s, self._learned = 0.0, 0  # time inside core.learn, for learner/update_ms
        self._checkpoint_ms: float | None = None  # the last save's duration, reported once
        self._threads: list[threading.Thread] = []
        #: when this learner process finished its first update (start-up cost, reported)
        self.first_update_unix: float | None = None

    # ---- checkpoints -------------------------------------------------------------------------
    def restore(self, path: str | Path) -> None:
        """Continue from the checkpoint folder ``path``."""
        tensors, optimizer_state, state = ckpt.load_checkpoint(path)
        for name, module in self.core.modules.items():
            prefix = f"{name}."
            module.load_state_dict(
                {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            )
        self.core.optimizer.load_state_dict(optimizer_state)
        if "torch_rng" in tensors:
            torch.set_rng_state(tensors["torch_rng"])
        self.counters.load(state["counters"])
        self.core.load_state(state, Path(path))

    def save(self) -> Path:
        """Write a checkpoint now; returns its folder. Its duration (the updates it holds up,
        replay snapshot included) is reported as ``learner/checkpoint_ms``."""
        start = time.perf_counter()
        try:
            return self._save()
        finally:
            self._checkpoint_ms = 1000.0 * (time.perf_counter() - start)

    def _save(self) -> Path:
        with self.core.lock:
            tensors = {
                f"{name}.{k}": v
                for name, module in self.core.modules.items()
                for k, v in module.state_dict().items()
            }
            tensors["torch_rng"] = torch.get_rng_state()
            state = {
                "counters": self.counters.state(),
                "config": to_dict(self.config),
                **self.core.state(),
            }
            return ckpt.save_checkpoint(
                self.run_dir,
                self.counters.updates,
                tensors,
                self.core.optimizer.state_dict(),
                state,
                self.core.snapshot(),
                keep=self.config.run.keep_checkpoints,
            )

    def publish(self) -> None:
        flatten_into(self.core.modules[ONLINE], self.flat)
        self.counters.version += 1
        self.params.publish(self.flat, self.counters.version)

    # ---- threads -----------------------------------------------------------------------------
    def _thread(self, name: str, body: Callable[[], None]) -> threading.Thread:
        def run() -> None:
            try:
                while not self.stop_event.is_set():
                    body()
            except BaseException as exc:  # surface to the update loop instead of dying silently
                self.error = exc
                self.stop_event.set()

        return threading.Thread(target=run, name=name, daemon=True)

    def step(self, timeout: float) -> bool:
        """One update if a batch is ready within ``timeout``; the wait is timed."""
        start = time.perf_counter()
        batch = self.core.batches.get(timeout)
        self._wait_s += time.perf_counter() - start
        if batch is None:
            return False
        learn_start = time.perf_counter()
        self.core.learn(batch)
        self._learn_s += time.perf_counter() - learn_start
        self._learned += 1
        self.counters.updates += 1
        if self.first_update_unix is None:
            self.first_update_unix = time.time()
        return True

    def _send(self, kind: str, **meta: Any) -> None:
        """Report to the supervisor; a broken link (a killed launcher) means "stop", not a
        crash: the loop then ends with a final publication and checkpoint like any stop."""
        if self.link_lost:
            return
        try:
            self.link.send(kind, **meta)
        except TransportError:
            self.link_lost = True

    def notice(self, text: str) -> None:
        """Show ``text`` on the progress line (work before the first update)."""
        self._send(
            "learner_stats",
            updates=self.counters.updates,
            env_steps=self.counters.env_steps,
            version=self.counters.version,
            metrics={},
            progress={},
            notice=text,
            first_update_unix=self.first_update_unix,
        )

    def report(self, since: float) -> None:
        dt = max(time.monotonic() - since, 1e-9)
        r = self.core.report()
        rejected = int(getattr(self.inbox, "rejected", 0)) + int(r.get("rejected", 0))
        gate = getattr(self.inbox, "gate", None)  # what the transport dropped, by reason
        by_reason = gate.rejected_by_reason if gate is not None else {}
        metrics = {
            **{f"transport/rejected/{reason}": float(n) for reason, n in by_reason.items()},
            "learner/wait_fraction": self._wait_s / dt,
            "learner/update_ms": 1000.0 * self._learn_s / self._learned if self._learned else None,
            "learner/checkpoint_ms": self._checkpoint_ms,
            "params/version": float(self.counters.version),
            "params/version_lag": r.get("version_lag"),
            "transport/rejected": float(rejected),
            **r.get("metrics", {}),
        }
        self._send(
            "learner_stats",
            updates=self.counters.updates,
            env_steps=self.counters.env_steps,
            version=self.counters.version,
            metrics={k: float(v) for k, v in metrics.items() if v is not None},
            progress=r.get("progress", {}),
            notice=r.get("notice"),
            first_update_unix=self.first_update_unix,
        )
        self._wait_s = 0.0
        self._learn_s, self._learned = 0.0, 0
        self._checkpoint_ms = None

    # ---- the loop ----------------------------------------------------------------------------
    def serve(self, resume_from: str | None = None) -> None:
        """Restore, run the core's pre-work, publish, update until told to stop; then publish,
        checkpoint and say ``stopped``. Raises what stopped a data thread (after reporting)."""
        if resume_from:
            self.restore(resume_from)
        self.core.before_serving(self.notice)
        self.publish()
        self._threads = [self._thread(n, b) for n, b in self.core.loops(self.inbox).items()]
        for t in self._threads:
            t.start()
        lc, rc = self.config.learner, self.config.run
        started = time.monotonic()
        elapsed_before = self.counters.elapsed_s
        last_report = last_ckpt = time.monotonic()
        self._send("learner_ready", version=self.counters.version, updates=self.counters.updates)

        def elapsed() -> float:
            if self.clock is not None:
                return self.clock()
            return elapsed_before + time.monotonic() - started

        try:
            while not self.stop_event.is_set() and not self.link_lost:
                if lc.max_updates and self.counters.updates >= lc.max_updates:
                    time.sleep(0.05)  # at the update budget: wait for the stop command
                elif self.step(timeout=0.05):
                    if self.counters.updates % lc.publish_interval == 0:
                        self.publish()
                    if lc.max_updates and self.counters.updates == lc.max_updates:
                        self._send("budget_reached", updates=self.counters.updates)
                now = time.monotonic()
                if now - last_report >= rc.log_interval_s:
                    self.report(last_report)
                    last_report = now
                    command = self.link.poll_command()
                    if command == CMD_STOP:
                        break
                    if command == CMD_CHECKPOINT:
                        self.counters.elapsed_s = elapsed()
                        self._send("checkpoint", path=str(self.save()))
                if rc.checkpoint_interval_s and now - last_ckpt >= rc.checkpoint_interval_s:
                    self.counters.elapsed_s = elapsed()
                    self._send("checkpoint", path=str(self.save()))
                    last_ckpt = now
        finally:
            self.stop_event.set()
            self.core.batches.close()
            for t in self._threads:
                t.join(timeout=5.0)
        if self.error is not None:
            self._send("error", message=f"{type(self.error).__name__}: {self.error}")
            raise self.error
        # the last, partial interval: a short run's only metrics may be there
        self.report(last_report)
        self.publish()
        self.counters.elapsed_s = elapsed()
        path = self.save()
        self._send(
            "stopped", path=str(path), updates=self.counters.updates, version=self.counters.version
        )
