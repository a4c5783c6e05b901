"""The control loop every learner role runs around its own update step.

A learner (:class:`LearnerCore`) owns its data threads and its update; this loop publishes
parameters every ``learner.publish_interval`` updates, reports metrics every
``run.log_interval_s``, obeys the launcher's commands (stop, checkpoint), writes periodic
checkpoints, and at the end publishes the final parameters, checkpoints and says "stopped".
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

from rlfleet.runtime.links import CMD_CHECKPOINT, CMD_STOP


class CheckpointedCounters:
    """Base of a learner's counters: every attribute set in ``__init__`` is saved in
    checkpoints (``state``) and continued on resume (``load``, keeping each field's type)."""

    def state(self) -> dict[str, float]:
        return dict(vars(self))

    def load(self, state: dict[str, Any]) -> None:
        for key in vars(self):
            if key in state:
                setattr(self, key, type(getattr(self, key))(state[key]))


class LearnerCore(Protocol):
    counters: Any  # .updates, .version, .elapsed_s
    stop_event: threading.Event
    error: BaseException | None

    def step_once(self, timeout: float) -> bool: ...
    def publish(self, sink: Any) -> None: ...
    def save(self) -> Any: ...
    def report(self, link: Any, since: float, updates_before: int, inbox: Any) -> None: ...


def serve(
    learner: LearnerCore,
    config: Any,
    inbox: Any,
    params: Any,
    link: Any,
    threads: list[threading.Thread],
) -> None:
    """Publish, start ``threads``, update until told to stop; then publish, checkpoint, report.

    Raises whatever stopped one of the learner's threads (after telling the launcher).
    """
    learner.publish(params)
    for t in threads:
        t.start()
    lc = config.learner
    started = time.monotonic()
    elapsed_before = learner.counters.elapsed_s
    last_report = last_ckpt = time.monotonic()
    updates_at_report = learner.counters.updates
    link.send("learner_ready", version=learner.counters.version, updates=learner.counters.updates)
    while not learner.stop_event.is_set():
        if learner.step_once(timeout=0.05):
            if learner.counters.updates % lc.publish_interval == 0:
                learner.publish(params)
            if lc.max_updates and learner.counters.updates == lc.max_updates:
                link.send("budget_reached", updates=learner.counters.updates)
        now = time.monotonic()
        if now - last_report >= config.run.log_interval_s:
            learner.report(link, last_report, updates_at_report, inbox)
            last_report, updates_at_report = now, learner.counters.updates
            command = link.poll_command()
            if command == CMD_STOP:
                break
            if command == CMD_CHECKPOINT:
                learner.counters.elapsed_s = elapsed_before + now - started
                link.send("checkpoint", path=str(learner.save()))
        interval = config.run.checkpoint_interval_s
        if interval and now - last_ckpt >= interval:
            learner.counters.elapsed_s = elapsed_before + now - started
            link.send("checkpoint", path=str(learner.save()))
            last_ckpt = now
    learner.stop_event.set()
    for t in threads:
        t.join(timeout=5.0)
    if learner.error is not None:
        link.send("error", message=f"{type(learner.error).__name__}: {learner.error}")
        raise learner.error
    learner.publish(params)
    learner.counters.elapsed_s = elapsed_before + time.monotonic() - started
    path = learner.save()
    link.send(
        "stopped",
        path=str(path),
        updates=learner.counters.updates,
        version=learner.counters.version,
    )
