"""The learner's data thread when a replay service samples (``transport.replay_service``):
:class:`RemoteFeed`, the counterpart of :class:`~rlfleet.agents.common.prioritized.ReplayFeed`
for a learner whose replay lives in the service.

A learner built on a feed (Ape-X DPG's) takes either: with a local replay it inserts and
samples itself; with a :class:`~rlfleet.agents.common.remote_store.RemoteStore` there is no
insert thread, the prefetch thread takes the batches the service sampled, and the service's
counters (carried in every batch) keep the learner's ``inserted``, ``sampled`` and ``env_steps``
and its version lag what they would have been.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rlfleet.agents.common.prioritized import InsertHook, normalised_weights
from rlfleet.agents.common.remote_store import waiting_notice
from rlfleet.transport.ports import Inbox

__all__ = ["RemoteFeed"]


class RemoteFeed:
    """Batches from a replay service for the learner's update loop.

    ``store``: the learner's :class:`~rlfleet.agents.common.remote_store.RemoteStore`.
    ``counters``: the learner's checkpointed counters (``inserted``, ``sampled``,
    ``env_steps``), advanced by what the service counted. ``weight_norm``: the replay section's
    importance-weight normalisation, applied here as a local replay's feed applies it."""

    def __init__(self, store: Any, counters: Any, *, weight_norm: str) -> None:
        self.store = store
        self.counters = counters
        self.weight_norm = weight_norm
        # reentrant, as the local feed's: the learner shell holds it around checkpoint writes
        self.lock = threading.RLock()
        self.last_batch = time.monotonic()

    def __len__(self) -> int:
        """The service's replay size, as its last batch reported it."""
        return len(self.store)

    @property
    def rejected(self) -> int:
        """Malformed batches plus the experience messages the service rejected."""
        return int(self.store.rejected)

    def loops(
        self,
        inbox: Inbox | None,
        put: Callable[[Any], Any],
        beta: Callable[[], float],
        on_insert: InsertHook,
    ) -> dict[str, Callable[[], None]]:
        """Only a prefetch thread: the service inserts (the learner has no inbox)."""
        return {"prefetch": lambda: self.prefetch_once(put, beta(), on_insert)}

    def prefetch_once(self, put: Callable[[Any], Any], beta: float, on_insert: InsertHook) -> None:
        """Hand the next ready batch to ``put`` as ``(token, fields, weights)``, with what the
        service counted meanwhile."""
        drawn = self.store.take(beta, timeout=0.1)
        if drawn is None:
            return
        self.last_batch = time.monotonic()
        done = self.store.counts()
        with self.lock:
            self.counters.sampled += done.sampled
            self.counters.inserted += done.inserted
            self.counters.env_steps += done.env_steps
        if done.messages:
            on_insert(done.messages, done.policy_versions)
        put((drawn.token, drawn.fields, normalised_weights(drawn.weights, self.weight_norm)))

    def update(self, token: Any, abs_td: np.ndarray) -> None:
        """Send a batch's new priorities to the service that sampled it."""
        self.store.update(token, abs_td)

    def notice(self) -> str | None:
        """What the progress line says while no batch comes (None while they do)."""
        return waiting_notice(time.monotonic() - self.last_batch)

    # ---- checkpoints -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"replay_size": len(self)}

    def load_state(self, state: dict[str, Any], replay_dir: Path) -> None:
        """Nothing to restore here (the replay and its limiter live in the service); a
        checkpoint that holds a replay snapshot is refused by the store, naming the way out."""
        if replay_dir.exists():
            self.store.load(replay_dir)

    def save(self, path: Path) -> None:
        self.store.save(path)
