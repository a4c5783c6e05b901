"""The replay service: the prioritized store at the memory node, serving sampled batches.

With ``transport.replay_service = true`` the learner no longer owns the replay. A service role
does, next to the message broker, and only sampled batches travel to the learner:

```
 actors --experience--> [experience list] --> ReplayService: insert (limiter) -> store
                                              ReplayService: sample ahead -> [samples list]
 learner <--batches-- [samples list]          (fields, weights, token, service counters)
 learner --priorities--> [priorities list] --> ReplayService: update (stale ones ignored)
```

Two halves, both transport-agnostic (the wiring is in :mod:`rlfleet.runtime.remote_replay`):

* :class:`ReplayService` -- owns the store (:func:`~rlfleet.runtime.stores.build_store`, so
  DQfD demonstrations live here too) and the samples-per-insert limiter. Three threads, each
  blocking on its own queue: **insert** (actors' experience, while the limiter allows),
  **sample** (draws a batch when the limiter allows and pushes it once the samples list has
  room), **update** (priority updates and the learner's demand messages).
* :class:`RemoteStore` -- the learner's store when a service samples: ``take`` pops a ready
  batch, ``update`` sends ``|TD|`` back with the batch's token, ``draw`` serves DQfD
  pre-training. The service's cumulative counters ride in every batch's metadata, so the
  learner still reports replay size, inserted items, env steps, samples per insert and
  rejected messages.

The token of a batch is ``(index, generation)`` arrays plus ``split`` (the agent rows of an
Ape-X DQfD batch; the rest are expert rows) and the service instance's id. A restarted service
gets a new id, and updates carrying another id are ignored (counted as ``foreign``); updates
for slots overwritten since they were sampled are skipped by the replay (generations).
Anything malformed is counted and dropped, never raised.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rlfleet.algorithms.dqfd import MixedSample
from rlfleet.errors import ConfigError, ReplayError, RlfleetError, TransportError
from rlfleet.replay.storage import Sample
from rlfleet.runtime.apex_config import ApexConfig
from rlfleet.runtime.learner import build_limiter
from rlfleet.runtime.stores import Drawn, MixedStore, agent_fields, build_store, wants_one_step
from rlfleet.runtime.wiring import check_service_config, experience_schema
from rlfleet.transport.codec import Message, encode

__all__ = [
    "BATCH_KIND",
    "DEMAND_KIND",
    "PRIORITIES_KIND",
    "RemoteStore",
    "ReplayService",
    "ServiceCounts",
    "ServiceEnds",
    "apply_priorities",
    "token_arrays",
]

BATCH_KIND = "replay_batch"
PRIORITIES_KIND = "priorities"
DEMAND_KIND = "replay_demand"
#: Array names of a batch's weights and token (never replay field names).
WEIGHTS, INDEX, GENERATION = "sample_weights", "sample_index", "sample_generation"
ABS_TD = "abs_td"
MODES = ("train", "pretrain")
#: Seconds a learner waits without a batch before it repeats its demand (a restarted service
#: learns the learner's mode and beta from it).
DEMAND_INTERVAL_S = 1.0


# ---- tokens on the wire -------------------------------------------------------------------
def token_arrays(token: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """A store's sample token as ``(index, generation, split)``: int64 arrays (agent rows
    first) and how many rows are agent rows (all of them outside Ape-X DQfD)."""
    if isinstance(token, MixedSample):
        parts = [s for s in (token.agent, token.expert) if s is not None]
        index = np.concatenate([np.asarray(s.indices, np.int64) for s in parts])
        generation = np.concatenate([np.asarray(s.generations, np.int64) for s in parts])
        return index, generation, int(token.n_agent)
    indices, generations = token
    index = np.asarray(indices, np.int64)
    return index, np.asarray(generations, np.int64), len(index)


def apply_priorities(
    store: Any, index: np.ndarray, generation: np.ndarray, abs_td: np.ndarray, split: int
) -> None:
    """``store.update`` from a token that travelled as arrays (see :func:`token_arrays`)."""
    if isinstance(store, MixedStore):
        n = len(index)

        def part(lo: int, hi: int) -> Sample | None:
            if hi <= lo:
                return None
            return Sample(index[lo:hi], np.ones(hi - lo, np.float32), {}, generation[lo:hi])

        weights = np.ones(n, np.float32)
        token: Any = MixedSample({}, weights, split, n - split, part(0, split), part(split, n))
    else:
        token = (index, generation)
    store.update(token, abs_td)


# ---- the service ----------------------------------------------------------------------------
class Inbox(Protocol):
    rejected: int

    def pull(self, timeout: float | None, max_messages: int = 64) -> list[Message]: ...


class BatchSink(Protocol):
    def push(self, payload: bytes) -> bool | None: ...


@dataclass
class ServiceEnds:
    """What a service is handed: its queues, and how it keeps (and gives up) its place.

    ``keepalive()`` refreshes membership and the exclusive claim: False means another instance
    took the run over (stop serving), None that it is unknown (broker unreachable)."""

    experience: Inbox
    updates: Inbox
    batches: BatchSink
    keepalive: Callable[[], bool | None] = lambda: True
    release: Callable[[], None] = lambda: None
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for closer in reversed(self.closers):
            try:
                closer()
            except Exception:
                pass


@dataclass
class ServiceCounts:
    """Cumulative counters of one service instance (they ride in every batch's metadata)."""

    inserted: int = 0
    env_steps: int = 0
    sampled: int = 0
    messages: int = 0
    policy_versions: int = 0
    rejected: int = 0

    def as_meta(self) -> dict[str, int]:
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}


def _meta_int(meta: dict[str, Any], name: str, default: int = 0) -> int:
    value = meta.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"meta.{name} is {value!r}, not an integer")
    return value


class ReplayService:
    """The store, the limiter and the three threads of one replay service instance."""

    def __init__(
        self,
        config: ApexConfig,
        seed: int,
        ends: ServiceEnds,
        *,
        obs_shape: tuple[int, ...] | None = None,
        obs_dtype: np.dtype | None = None,
        num_actions: int | None = None,
        service_id: str | None = None,
    ) -> None:
        """``obs_shape``/``obs_dtype``/``num_actions`` default to a probe of the run's
        environment (benchmarks pass them to serve synthetic data)."""
        check_service_config(config)
        if obs_shape is None or obs_dtype is None or num_actions is None:
            from rlfleet.envs import check_discrete, make_vector_env

            probe = make_vector_env(config.env.id, 1, seed, env_kwargs=config.env.kwargs or None)
            check_discrete(probe.action_space, config.env.id, algorithm="Ape-X DQN")
            obs_shape, obs_dtype = probe.obs_shape, probe.obs_dtype
            num_actions = probe.num_actions
            probe.close()
        self.config = config
        self.ends = ends
        self.id = service_id or secrets.token_hex(4)
        self.store = build_store(config, tuple(obs_shape), np.dtype(obs_dtype), num_actions, seed)
        self.limiter = build_limiter(config)
        self.fields = tuple(agent_fields(config, tuple(obs_shape), np.dtype(obs_dtype)))
        self.schema = experience_schema(tuple(obs_shape), obs_dtype, wants_one_step(config))
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
        index, generation, split = token_arrays(drawn.token)
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
                apply_priorities(self.store, index, generation, abs_td, split)
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


# ---- the learner's side ---------------------------------------------------------------------
class MessageSink(Protocol):
    def push(self, payload: bytes) -> bool: ...


class RemoteStore:
    """The learner's store when a replay service samples (``transport.replay_service``).

    The learner's insert thread does not run (the service inserts); its prefetch thread calls
    :meth:`take` instead of sampling and the limiter; its update loop calls :meth:`update` as
    usual, which sends the priorities back. :meth:`counts` hands over what the service counted
    since the last call (inserted items, env steps, samples, experience messages and the sum
    of their policy versions), so the learner's counters and metrics stay what they were.
    """

    remote = True

    def __init__(
        self,
        config: ApexConfig,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype,
        batches: Inbox,
        priorities: MessageSink,
        *,
        wait_s: float = 600.0,
    ) -> None:
        self.batch_size = config.learner.batch_size
        self.expect = {
            name: (np.dtype(spec_dtype).name, tuple(shape))
            for name, (spec_dtype, shape) in experience_schema(
                tuple(obs_shape), obs_dtype, wants_one_step(config)
            ).items()
            if name != "priority"
        }
        self.batch_source = batches
        self.priority_sink = priorities
        self.wait_s = wait_s
        self._beta = config.replay.beta_start
        self._mode: str | None = None
        self._last_heard = float("-inf")
        self._last_counts: tuple[str, ServiceCounts] | None = None
        self._rejected_by_service: dict[str, int] = {}
        self._pending = ServiceCounts()
        self._size = 0
        self._demos = 0
        self.bad = 0
        self.received = 0
        self.last_error = ""

    # ---- what the learner reads -----------------------------------------------------------
    def __len__(self) -> int:
        """Replay size as the service last reported it."""
        return self._size

    @property
    def num_demos(self) -> int:
        return self._demos

    @property
    def rejected(self) -> int:
        """Malformed batches here plus the experience messages the service rejected."""
        return self.batch_source.rejected + self.bad + sum(self._rejected_by_service.values())

    def counts(self) -> ServiceCounts:
        """What the service counted since the last call (deltas; zeros when nothing new)."""
        out, self._pending = self._pending, ServiceCounts()
        return out

    # ---- batches --------------------------------------------------------------------------
    def take(self, beta: float, timeout: float, mode: str = "train") -> Drawn | None:
        """The next ready batch within ``timeout`` s, or None. ``beta`` and ``mode`` reach the
        service with the next message (a demand message when the mode changes or nothing has
        come for a while)."""
        self._beta = float(beta)
        now = time.monotonic()
        if mode != self._mode or now - self._last_heard >= DEMAND_INTERVAL_S:
            self._mode = mode
            self._last_heard = now
            self.priority_sink.push(encode(DEMAND_KIND, None, {"mode": mode, "beta": self._beta}))
        for message in self.batch_source.pull(timeout=timeout, max_messages=1):
            drawn = self._accept(message)
            if drawn is not None:
                self._last_heard = time.monotonic()
                return drawn
        return None

    def draw(self, batch_size: int, beta: float) -> Drawn:
        """A pre-training batch (DQfD phase I): waits for the service, up to ``wait_s``."""
        if batch_size != self.batch_size:
            raise ConfigError(
                f"the replay service samples batches of {self.batch_size}, asked for {batch_size}"
            )
        deadline = time.monotonic() + self.wait_s
        while time.monotonic() < deadline:
            drawn = self.take(beta, timeout=0.5, mode="pretrain")
            if drawn is not None:
                return drawn
        raise TransportError(
            f"no batch from the replay service in {self.wait_s:g} s: is `rlfleet replay` "
            "running for this run?"
        )

    def _problem(self, message: Message) -> str:
        arrays, meta, b = message.arrays, message.meta, self.batch_size
        for name, (dtype, item_shape) in self.expect.items():
            array = arrays.get(name)
            if array is None:
                return f"batch lacks array {name!r}"
            if array.dtype.name != dtype or array.shape != (b, *item_shape):
                return (
                    f"batch array {name!r} is {array.dtype.name}{list(array.shape)}, "
                    f"expected {dtype}{[b, *item_shape]}"
                )
        for name, dtype in ((WEIGHTS, "float32"), (INDEX, "int64"), (GENERATION, "int64")):
            array = arrays.get(name)
            if array is None or array.dtype.name != dtype or array.shape != (b,):
                return f"batch array {name!r} must be {dtype}[{b}]"
        for name, array in arrays.items():
            if array.ndim < 1 or array.shape[0] != b:
                return f"batch array {name!r} has shape {list(array.shape)}, not [{b}, ...]"
        if not isinstance(meta.get("service"), str):
            return "batch meta.service must be a string"
        for name in ("split", "size", "demos", *ServiceCounts.__dataclass_fields__):
            value = meta.get(name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                return f"batch meta.{name} is {value!r}, not a count"
        if meta["split"] > b:
            return f"batch meta.split {meta['split']} exceeds the batch size {b}"
        return ""

    def _accept(self, message: Message) -> Drawn | None:
        problem = self._problem(message)
        if problem:
            self.bad += 1
            self.last_error = problem
            return None
        meta, arrays = message.meta, message.arrays
        self.received += 1
        service = meta["service"]
        now = ServiceCounts(**{name: meta[name] for name in ServiceCounts.__dataclass_fields__})
        before = (
            self._last_counts[1]
            if self._last_counts and self._last_counts[0] == service
            else ServiceCounts()  # a new service instance counts from zero
        )
        for name in ServiceCounts.__dataclass_fields__:
            delta = max(0, getattr(now, name) - getattr(before, name))
            setattr(self._pending, name, getattr(self._pending, name) + delta)
        self._last_counts = (service, now)
        self._rejected_by_service[service] = now.rejected
        self._pending.rejected = 0  # reported through `rejected`, not as a counter delta
        self._size, self._demos = meta["size"], meta["demos"]
        # decoded arrays are read-only views of the message: copy what torch will own
        batch = {k: np.array(v) for k, v in arrays.items() if k not in (WEIGHTS, INDEX, GENERATION)}
        token = (arrays[INDEX], arrays[GENERATION], int(meta["split"]), service)
        return Drawn(batch, np.array(arrays[WEIGHTS]), token)

    # ---- priorities -----------------------------------------------------------------------
    def update(self, token: Any, abs_td: np.ndarray) -> None:
        """Send a batch's new ``|TD|`` to the service that sampled it (never blocks long,
        never raises on an outage: a lost update leaves the items at their old priority)."""
        index, generation, split, service = token
        td = np.asarray(abs_td, np.float32)
        if not np.all(np.isfinite(td)):  # as a local replay would: a diverged loss stops here
            bad = int(np.flatnonzero(~np.isfinite(td))[0])
            raise ReplayError(
                f"priority {td[bad]} at position {bad} is invalid; valid: finite values >= 0"
            )
        payload = encode(
            PRIORITIES_KIND,
            {INDEX: index, GENERATION: generation, ABS_TD: td},
            {"service": service, "split": split, "beta": self._beta, "mode": self._mode},
        )
        self.priority_sink.push(payload)

    def save(self, path: Path) -> None:
        raise ConfigError(
            "the replay lives in the replay service: run.snapshot_replay cannot snapshot it"
        )

    def load(self, path: Path) -> None:
        raise ConfigError(
            f"checkpoint replay snapshot {path} cannot be loaded into a replay service; resume "
            "with transport.replay_service = false, or from a checkpoint without a snapshot"
        )
