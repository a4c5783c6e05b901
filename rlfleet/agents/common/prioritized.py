"""Distributed prioritized replay parts shared by the Ape-X family (Horgan et al. 2018): the
replay section, the samples-per-insert limiter, and the learner's insert / prefetch data threads
around a local replay. The actors' half (staging, initial priorities, pushes) is
:mod:`rlfleet.agents.common.prioritized_acting`; this module imports no torch (configs use it).

Ape-X DQN (``agents/apex``) and Ape-X DPG (``agents/dpg``) differ in what a transition's action
is (an index or a Box vector), in the network and in the loss; how transitions travel, are
stored with the actors' initial priorities, sampled with importance weights and re-prioritised
is the same, and lives here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlfleet.agents.common.replay_store import build_replay
from rlfleet.agents.common.sections import check_choice
from rlfleet.config import field
from rlfleet.errors import ConfigError
from rlfleet.replay import FieldSpec, SamplesPerInsertLimiter, load_kernels
from rlfleet.transport.codec import Message
from rlfleet.transport.ports import Inbox

__all__ = [
    "InsertHook",
    "ReplayFeed",
    "ReplaySection",
    "build_limiter",
    "normalised_weights",
    "transition_fields",
]

#: ``on_insert(messages, policy_versions)``: how many experience messages went into the replay
#: and the sum of the policy versions that produced them (the learner's version-lag meter).
InsertHook = Callable[[int, int], None]


@dataclass
class ReplaySection:
    kind: str = field("prioritized", "Replay type: prioritized or uniform.")
    capacity: int = field(2_000_000, "Transitions kept (FIFO eviction).", ge=1)
    alpha: float = field(0.6, "Priority exponent alpha.", ge=0)
    priority_eps: float = field(1e-6, "Added to |TD| before the exponent.", ge=0)
    beta_start: float = field(0.4, "Importance-sampling exponent at the first update.", ge=0, le=1)
    beta_end: float = field(
        1.0, "Importance-sampling exponent after beta_anneal_updates.", ge=0, le=1
    )
    beta_anneal_updates: int = field(1_000_000, "Updates over which beta anneals linearly.", ge=1)
    learning_starts: int = field(50_000, "Transitions in replay before the first update (W).", ge=0)
    weight_norm: str = field(
        "buffer",
        "Importance-weight normalisation: 'buffer' (paper: by the max weight over the whole buffer) "
        "or 'batch' (by the max weight in the sampled batch, a common deviation).",
    )
    samples_per_insert: float = field(
        0.0, "Sampled items per inserted item the learner may not exceed (0 = no limit).", ge=0
    )
    spi_tolerance: float = field(
        0.0, "Slack of the samples-per-insert limit, in items (0 = 10 batches).", ge=0
    )

    def validate(self) -> None:
        check_choice("replay.weight_norm", self.weight_norm, ("buffer", "batch"))
        check_choice("replay.kind", self.kind, ("prioritized", "uniform"))
        if self.learning_starts > self.capacity:
            raise ConfigError(
                f"replay.learning_starts {self.learning_starts} exceeds replay.capacity "
                f"{self.capacity}: the learner would never start"
            )

    def check_batch_size(self, batch_size: int) -> None:
        """``learner.batch_size`` is one the replay can hold."""
        if batch_size > self.capacity:
            raise ConfigError(
                f"learner.batch_size {batch_size} exceeds replay.capacity {self.capacity}"
            )

    def beta(self, updates: int) -> float:
        """The importance-sampling exponent after ``updates`` updates (linear anneal)."""
        frac = min(1.0, updates / self.beta_anneal_updates)
        return self.beta_start + (self.beta_end - self.beta_start) * frac


def transition_fields(
    obs_shape: tuple[int, ...],
    obs_dtype: np.dtype,
    action_shape: tuple[int, ...] = (),
    action_dtype: np.dtype | type = np.int64,
) -> dict[str, FieldSpec]:
    """Replay fields of an n-step transition ``obs, action, reward, discount, next_obs``."""
    obs = FieldSpec(shape=tuple(obs_shape), dtype=obs_dtype)
    scalar = FieldSpec(shape=(), dtype=np.float32)
    return {
        "obs": obs,
        "action": FieldSpec(shape=tuple(action_shape), dtype=action_dtype),
        "reward": scalar,
        "discount": scalar,
        "next_obs": obs,
    }


def build_limiter(
    replay: ReplaySection, batch_size: int, largest_push: int
) -> SamplesPerInsertLimiter:
    """The samples-per-insert limiter of a run. ``largest_push``: the most transitions one
    actor message can hold (``push_size + envs_per_actor * n_step``)."""
    tolerance = replay.spi_tolerance or 10.0 * batch_size
    if replay.samples_per_insert:
        # wide enough that one sample batch and one (largest) push always fit: no deadlock
        tolerance = max(
            tolerance,
            SamplesPerInsertLimiter.min_error_buffer(
                replay.samples_per_insert, batch_size, largest_push
            ),
        )
    return SamplesPerInsertLimiter(
        samples_per_insert=replay.samples_per_insert or None,
        min_size_to_sample=max(replay.learning_starts, batch_size),
        error_buffer=tolerance,
    )


def normalised_weights(weights: np.ndarray, weight_norm: str) -> np.ndarray:
    """Importance weights as the learner uses them: as sampled (``"buffer"``: the replay
    normalised them by the buffer's max weight) or divided by the batch's max (``"batch"``)."""
    weights = np.asarray(weights, np.float32)
    if weight_norm == "batch":
        # w_i is proportional to p_i^-beta: dividing by the batch max is exact
        weights = weights / weights.max()
    return weights


class ReplayFeed:
    """A local replay with its limiter and the learner's two data threads:

    * **insert** pulls actor messages (``fields`` + ``priority``, ``env_steps`` and
      ``policy_version`` in the metadata) into the replay with the actors' priorities, while
      the limiter allows (else the messages wait in the inbox: backpressure on actors);
    * **prefetch** samples ``batch_size`` items with importance weights (normalised over the
      buffer, or over the batch with ``weight_norm = "batch"``) and hands ``(token, fields,
      weights)`` to ``put``.

    :meth:`update` writes the learner's new priorities back (stale ones are ignored). The feed
    counts into ``counters`` (the learner's checkpointed counters: ``inserted``, ``sampled``,
    ``env_steps``) under its lock; ``rejected`` counts messages without a transition's fields."""

    def __init__(
        self,
        replay: ReplaySection,
        fields: Mapping[str, FieldSpec],
        seed: int,
        counters: Any,
        *,
        batch_size: int,
        push_size: int,
        largest_push: int,
    ) -> None:
        self.section = replay
        self.fields = tuple(fields)
        self._unloaded_kernels: dict[str, FieldSpec] | None = dict(fields)  # see insert_once
        self.prioritized = replay.kind == "prioritized"
        self.replay: Any = build_replay(replay, fields, seed)
        self.batch_size = batch_size
        self.push_size = push_size
        self.limiter = build_limiter(replay, batch_size, largest_push)
        self._largest_push = largest_push
        # reentrant: the learner shell holds it around checkpoint writes, which call save()
        self.lock = threading.RLock()
        self.counters = counters
        self.rejected = 0

    def __len__(self) -> int:
        with self.lock:
            return len(self.replay)

    def notice(self) -> str | None:
        """Nothing to say on the progress line: a local replay never waits on another role."""
        return None

    def loops(
        self,
        inbox: Inbox,
        put: Callable[[Any], Any],
        beta: Callable[[], float],
        on_insert: InsertHook,
    ) -> dict[str, Callable[[], None]]:
        """The data-thread bodies (each called repeatedly by the learner shell); ``on_insert``
        hears of every inserted message."""
        return {
            "insert": lambda: self.insert_once(inbox, on_insert),
            "prefetch": lambda: self.prefetch_once(put, beta()),
        }

    def insert_once(self, inbox: Inbox, on_insert: InsertHook) -> None:
        if self._unloaded_kernels is not None:
            # the first call: idle until the actors' first push, so load the replay's compiled
            # kernels now rather than on the first insert, between that push and the first update
            load_kernels(self._unloaded_kernels)
            self._unloaded_kernels = None
        if not self.limiter.wait_insert(self.push_size, timeout=0.1):
            return
        for message in inbox.pull(timeout=0.1, max_messages=1):
            self.insert(message, on_insert)

    def insert(self, message: Message, on_insert: InsertHook | None = None) -> None:
        """Add one message's transitions (a message without the fields is counted, dropped)."""
        arrays = message.arrays
        try:
            batch = {name: arrays[name] for name in self.fields}
            priorities = arrays["priority"]
        except KeyError:
            with self.lock:
                self.rejected += 1
            return
        n = len(priorities)
        with self.lock:
            self.replay.add(batch, priorities if self.prioritized else None)
            self.counters.inserted += n
            self.counters.env_steps += int(message.meta.get("env_steps", 0))
        if on_insert is not None:
            on_insert(1, int(message.meta.get("policy_version", 0)))
        self.limiter.record_insert(n)

    def draw(self, beta: float) -> tuple[Any, dict[str, np.ndarray], np.ndarray] | None:
        """``(token, fields, weights)`` of one batch, or None while the limiter says wait."""
        b = self.batch_size
        if not self.limiter.wait_sample(b, timeout=0.1):
            return None
        with self.lock:
            s = self.replay.sample(b, beta)
            self.counters.sampled += b
        self.limiter.record_sample(b)
        weights = normalised_weights(s.weights, self.section.weight_norm)
        return (s.indices, s.generations), s.fields, weights

    def prefetch_once(self, put: Callable[[Any], Any], beta: float) -> None:
        drawn = self.draw(beta)
        if drawn is not None:
            put(drawn)

    def update(self, token: Any, abs_td: np.ndarray) -> None:
        """New priorities of a drawn batch (ignored by a uniform replay; stale rows skipped)."""
        if self.prioritized:
            indices, generations = token
            with self.lock:
                self.replay.update_priorities(indices, abs_td, generations)

    # ---- checkpoints -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"limiter": self.limiter.state_dict(), "replay_size": len(self)}

    def load_state(self, state: dict[str, Any], replay_dir: Path) -> None:
        """Restore the limiter and, when it was snapshotted, the replay; without a snapshot
        the limiter restarts so the replay refills before learning."""
        if replay_dir.exists():
            self.limiter.load_state_dict(state["limiter"])
            with self.lock:
                self.replay = type(self.replay).load(replay_dir)
        else:
            self.limiter = build_limiter(self.section, self.batch_size, self._largest_push)

    def save(self, path: Path) -> None:
        with self.lock:
            self.replay.save(path)
