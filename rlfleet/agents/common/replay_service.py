"""The replay service: the prioritized store at the memory node, serving sampled batches.

With ``transport.replay_service = true`` the learner no longer owns the replay. A service role
does, next to the message broker, and only sampled batches travel to the learner (the messages:
:mod:`rlfleet.agents.common.service_messages`; the learner's side:
:class:`~rlfleet.agents.common.remote_store.RemoteStore`; the claim on a run, its standby and the
transport: the fleet's :mod:`rlfleet.fleet.services`). Every agent of the Ape-X family uses it
through its spec's ``service`` (:func:`rlfleet.agents.common.service_spec.replay_service_spec`).

:class:`ReplayService` owns the agent's store and the samples-per-insert limiter, both handed
over as a :class:`ServedReplay` (Ape-X DQN's store may hold DQfD demonstrations, Ape-X DPG's
holds Box actions): what is agent-specific is which fields a transition has and how the store's
batch token travels; the rest is here. Three threads, each blocking on its own queue: **insert**
(actors' experience, while the limiter allows), **sample** (draws a batch when the limiter
allows and pushes it once the samples list has room), **update** (priority updates and the
learner's demand messages). It is transport-agnostic: it is handed its queues and its keepalive
as :class:`~rlfleet.transport.ports.ServiceEnds`. Anything malformed is counted and dropped,
never raised.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlfleet.agents.common import service_messages
from rlfleet.agents.common.service_messages import (
    ABS_TD,
    BATCH_KIND,
    DEMAND_KIND,
    GENERATION,
    INDEX,
    MODES,
    WEIGHTS,
    ServiceCounts,
)
from rlfleet.envs.spec import EnvSpec
from rlfleet.errors import ConfigError, RlfleetError
from rlfleet.replay import SamplesPerInsertLimiter
from rlfleet.transport.codec import Message, encode
from rlfleet.transport.ports import ServiceEnds

__all__ = ["ReplayService", "ServedReplay", "check_service_config", "describe"]


def check_service_config(config: Any) -> None:
    """Refuse what a replay service cannot serve: it holds the replay outside the learner's
    checkpoints, so it cannot be snapshotted with them."""
    if config.run.snapshot_replay:
        raise ConfigError(
            "run.snapshot_replay = true cannot be combined with transport.replay_service = "
            "true: the replay lives in the service, not in the learner's checkpoints"
        )


@dataclass
class ServedReplay:
    """What an agent hands its replay service.

    ``store``: ``add(batch, priorities)``, ``draw(batch_size, beta)`` (an object with
    ``fields``, ``weights`` and ``token``), ``update(token, abs_td)``, ``len()`` and
    ``num_demos`` (demonstration items, what DQfD pre-training samples; 0 without them).
    ``fields``: the transition fields an experience message contributes (besides
    ``priority``). ``limiter``: the run's samples-per-insert limiter. ``token_arrays`` /
    ``apply_priorities``: how the store's sample token travels as arrays and back
    (:mod:`rlfleet.agents.common.service_messages`; a store of several replays supplies its
    own)."""

    store: Any
    fields: tuple[str, ...]
    limiter: SamplesPerInsertLimiter
    token_arrays: Callable[[Any], tuple[np.ndarray, np.ndarray, int]] = (
        service_messages.token_arrays
    )
    apply_priorities: Callable[..., None] = service_messages.apply_priorities


def _meta_int(meta: dict[str, Any], name: str, default: int = 0) -> int:
    value = meta.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"meta.{name} is {value!r}, not an integer")
    return value


class ReplayService:
    """The store, the limiter and the three threads of one replay service instance (of any
    agent: the agent-specific parts come from ``served``)."""

    def __init__(
        self,
        config: Any,
        env: EnvSpec,
        seed: int,
        ends: ServiceEnds,
        service_id: str | None = None,
        *,
        served: Callable[[Any, EnvSpec, int], ServedReplay],
    ) -> None:
        """``served(config, env, seed)``: the agent's store, fields, limiter and tokens.
        ``config``'s shared Ape-X-family sections give the batch size (``learner``), the push
        size (``actor``) and the first beta (``replay``)."""
        check_service_config(config)
        self.config = config
        self.ends = ends
        self.id = service_id or secrets.token_hex(4)
        parts = served(config, env, seed)
        self.store = parts.store
        self.limiter = parts.limiter
        self.fields = tuple(parts.fields)
        self._token_arrays = parts.token_arrays
        self._apply_priorities = parts.apply_priorities
        self.batch_size = config.learner.batch_size
        self.counts = ServiceCounts()
        self.mode = "train"
        self.beta = config.replay.beta_start
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.room = threading.Event()  # set when the learner sent something: it consumed a batch
        self.mode_changed = threading.Event()
        self.error: BaseException | None = None
        # service-side counters (not in batch metadata)
        self.batches = 0
        self.batch_bytes = 0
        self.pretrain_batches = 0
        self.updates = 0
        self.foreign = 0
        self.malformed = 0
        self.last_error = ""

    # ---- threads --------------------------------------------------------------------------
    def _guarded(self, body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                while not self.stop_event.is_set():
                    body()
            except BaseException as exc:  # surface to the main loop instead of dying silently
                self.error = exc
                self.stop_event.set()

        return run

    def insert_once(self) -> None:
        """Insert what actors pushed, while the limiter allows (else they wait: backpressure)."""
        if not self.limiter.wait_insert(self.config.actor.push_size, timeout=0.1):
            return
        for message in self.ends.experience.pull(timeout=0.1, max_messages=1):
            self._insert(message)

    def _insert(self, message: Message) -> None:
        arrays = message.arrays
        try:
            batch = {name: arrays[name] for name in self.fields}
            priorities = arrays["priority"]
            env_steps = _meta_int(message.meta, "env_steps")
            version = _meta_int(message.meta, "policy_version")
            n = len(priorities)
            with self.lock:
                self.store.add(batch, priorities)
                self.counts.inserted += n
                self.counts.env_steps += env_steps
                self.counts.messages += 1
                self.counts.policy_versions += version
        except (KeyError, ValueError, TypeError, RlfleetError) as exc:
            self.malformed += 1
            self.last_error = f"experience: {type(exc).__name__}: {exc}"
            return
        self.limiter.record_insert(n)

    def _may_sample(self, timeout: float) -> bool:
        if self.mode == "pretrain":  # DQfD phase I: demonstrations only, outside the limiter
            if self.store.num_demos > 0:
                return True
            self.mode_changed.wait(timeout)
            self.mode_changed.clear()
            return False
        return self.limiter.wait_sample(self.batch_size, timeout=timeout)

    def sample_batch(self) -> bytes:
        """Draw one batch now (no limiter) and encode it with its token and the counters."""
        pretrain = self.mode == "pretrain"
        with self.lock:
            drawn = self.store.draw(self.batch_size, self.beta)
            if not pretrain:
                self.counts.sampled += self.batch_size
            meta: dict[str, Any] = {
                "service": self.id,
                "pretrain": pretrain,
                "size": len(self.store),
                "demos": int(self.store.num_demos),
                **self.counts.as_meta(),
            }
        meta["rejected"] = self.ends.experience.rejected + self.malformed
        index, generation, split = self._token_arrays(drawn.token)
        meta["split"] = split
        arrays = dict(drawn.fields)
        arrays[WEIGHTS] = np.asarray(drawn.weights, np.float32)
        arrays[INDEX] = index
        arrays[GENERATION] = generation
        if pretrain:
            self.pretrain_batches += 1
        else:
            self.limiter.record_sample(self.batch_size)
        return encode(BATCH_KIND, arrays, meta)

    def sample_loop(self) -> None:
        """Sample ahead; hold one encoded batch until the samples list has room for it."""
        pending: bytes | None = None
        while not self.stop_event.is_set():
            if pending is None:
                if not self._may_sample(timeout=0.1):
                    continue
                pending = self.sample_batch()
            self.room.clear()
            pushed = self.ends.batches.push(pending)
            if pushed:
                self.batches += 1
                self.batch_bytes += len(pending)
                pending = None
            else:  # full (or unreachable): wait until the learner reports a consumed batch
                self.room.wait(0.05)

    def update_once(self) -> None:
        """Apply the learner's priority updates (and take in its mode and beta)."""
        for message in self.ends.updates.pull(timeout=0.1, max_messages=64):
            self.on_update(message)

    def on_update(self, message: Message) -> None:
        """One message from the learner: a priority update or a demand; malformed ones are
        counted (``malformed``), updates of another service instance too (``foreign``)."""
        self.room.set()
        meta = message.meta
        mode, beta = meta.get("mode"), meta.get("beta")
        if mode in MODES and mode != self.mode:
            self.mode = str(mode)
            self.mode_changed.set()
        if isinstance(beta, (int, float)) and not isinstance(beta, bool) and 0 <= beta <= 1:
            self.beta = float(beta)
        if message.kind == DEMAND_KIND:
            return
        if meta.get("service") != self.id:
            self.foreign += 1
            return
        try:
            index, generation, abs_td = (message.arrays[k] for k in (INDEX, GENERATION, ABS_TD))
            split = _meta_int(meta, "split", -1)
            n = len(index)
            if not (index.ndim == generation.ndim == abs_td.ndim == 1):
                raise ValueError("index, generation and abs_td must be 1-d")
            if len(generation) != n or len(abs_td) != n or not 0 <= split <= n:
                raise ValueError(f"lengths {n}, {len(generation)}, {len(abs_td)}, split {split}")
            if index.dtype.kind not in "iu" or generation.dtype.kind not in "iu":
                raise ValueError("index and generation must be integers")
            with self.lock:
                self._apply_priorities(self.store, index, generation, abs_td, split)
        except (KeyError, ValueError, TypeError, RlfleetError) as exc:
            self.malformed += 1
            self.last_error = f"priorities: {type(exc).__name__}: {exc}"
            return
        self.updates += 1

    # ---- main loop ------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Counters for status lines and tests."""
        with self.lock:
            size = len(self.store)
        return {
            "service": self.id,
            "size": size,
            "batches": self.batches,
            "batch_bytes": self.batch_bytes,
            "pretrain_batches": self.pretrain_batches,
            "updates": self.updates,
            "foreign": self.foreign,
            "malformed": self.malformed,
            "rejected": self.ends.experience.rejected,
            "mode": self.mode,
            **self.counts.as_meta(),
        }

    def start(self) -> list[threading.Thread]:
        """Start the three threads (daemons; :meth:`stop` ends them)."""
        self._threads = [
            threading.Thread(target=self._guarded(self.insert_once), name="insert", daemon=True),
            threading.Thread(target=self._guarded(self.sample_loop), name="sample", daemon=True),
            threading.Thread(target=self._guarded(self.update_once), name="update", daemon=True),
        ]
        for t in self._threads:
            t.start()
        return self._threads

    def stop(self) -> None:
        """End the threads and give up the claim; re-raise a thread's error."""
        self.stop_event.set()
        self.room.set()
        self.mode_changed.set()
        for t in getattr(self, "_threads", []):
            t.join(timeout=5.0)
        self.ends.release()
        if self.error is not None:
            raise self.error

    def serve(
        self,
        stop_check: Callable[[float], str | None],
        report: Callable[[dict[str, Any]], None] | None = None,
        report_interval_s: float = 1.0,
    ) -> str:
        """Serve until ``stop_check(wait_s)`` (which may block that long) names a reason, the
        claim is lost, or a thread fails (raised here). Returns the reason."""
        self.start()
        reason = ""
        last_report = time.monotonic()
        try:
            while not self.stop_event.is_set():
                reason = stop_check(0.2) or ""
                if reason:
                    break
                if self.ends.keepalive() is False:
                    reason = "another replay service took over the run"
                    break
                now = time.monotonic()
                if report is not None and now - last_report >= report_interval_s:
                    report(self.stats())
                    last_report = now
        finally:
            self.stop()
        return reason


def describe(stats: dict[str, Any]) -> str:
    """One status line of a running service (``rlfleet replay`` prints it every second)."""
    return (
        f"replay {stats['service']}: {stats['size']:,} items, {stats['inserted']:,} inserted, "
        f"{stats['batches']:,} batches sent, {stats['updates']:,} priority updates "
        f"({stats['foreign']} foreign, {stats['malformed']} malformed, "
        f"{stats['rejected']} experience rejected)"
    )
