"""The learner's store when a replay service samples (``transport.replay_service = true``).

:class:`RemoteStore` stands where the learner's replay would: ``take`` pops a ready batch,
``update`` sends ``|TD|`` back with the batch's token, ``draw`` serves DQfD pre-training. The
service's cumulative counters ride in every batch's metadata, so the learner still reports
replay size, inserted items, env steps, samples per insert and rejected messages. A batch is
checked against the agent's transition fields (its message schema, ``priority`` aside) before
the learner sees it. The service is :mod:`rlfleet.agents.common.replay_service`, the messages
:mod:`rlfleet.agents.common.service_messages`; :func:`waiting_notice` is what a learner says
while no batch comes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rlfleet.agents.common.replay_store import Drawn
from rlfleet.agents.common.service_messages import (
    ABS_TD,
    DEMAND_KIND,
    GENERATION,
    INDEX,
    PRIORITIES_KIND,
    WEIGHTS,
    ServiceCounts,
)
from rlfleet.envs.spec import EnvSpec
from rlfleet.errors import ConfigError, ReplayError, TransportError
from rlfleet.transport.codec import Message, encode
from rlfleet.transport.ports import Inbox, Outbox

__all__ = ["SERVICE_WAIT_NOTICE_S", "RemoteStore", "waiting_notice"]

#: Seconds a learner waits without a batch before it repeats its demand (a restarted service
#: learns the learner's mode and beta from it).
DEMAND_INTERVAL_S = 1.0
#: Seconds without a batch from the replay service before the progress line says so.
SERVICE_WAIT_NOTICE_S = 10.0

Schema = Callable[[Any, EnvSpec], dict[str, tuple[str, tuple[int, ...]]]]


def waiting_notice(waited_s: float) -> str | None:
    """What the learner's progress line says after ``waited_s`` seconds without a batch
    (nothing moves without a service), or None before :data:`SERVICE_WAIT_NOTICE_S`."""
    if waited_s < SERVICE_WAIT_NOTICE_S:
        return None
    return (
        f"no batch from the replay service for {waited_s:.0f} s: is `rlfleet replay "
        "--redis URL --run NAME` running for this run?"
    )


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
        config: Any,
        env: EnvSpec,
        batches: Inbox,
        priorities: Outbox,
        *,
        schema: Schema,
        wait_s: float = 600.0,
    ) -> None:
        """``schema(config, env)``: the agent's experience message schema; a batch carries its
        fields (all but ``priority``), ``learner.batch_size`` rows each."""
        self.batch_size = config.learner.batch_size
        self.expect = {
            name: (np.dtype(spec_dtype).name, tuple(shape))
            for name, (spec_dtype, shape) in schema(config, env).items()
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
