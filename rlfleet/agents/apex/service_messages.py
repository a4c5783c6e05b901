"""Ape-X's part of the replay service's messages: how a token of its stores travels.

The messages, kinds and counters are the Ape-X family's
(:mod:`rlfleet.agents.common.service_messages`, re-exported here). What is Ape-X's own is the
Ape-X DQfD store (:class:`~rlfleet.agents.apex.stores.MixedStore`): its batches hold agent rows
first and expert rows after them, so its token travels as the two replays' ``(index,
generation)`` arrays concatenated, with ``split`` the number of agent rows
(:func:`token_arrays`, :func:`apply_priorities`); a single replay's token travels as it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlfleet.agents.apex.mixed import MixedSample
from rlfleet.agents.apex.stores import MixedStore
from rlfleet.agents.common import service_messages as shared
from rlfleet.agents.common.service_messages import (
    ABS_TD,
    BATCH_KIND,
    DEMAND_KIND,
    GENERATION,
    INDEX,
    MODES,
    PRIORITIES_KIND,
    WEIGHTS,
    ServiceCounts,
)
from rlfleet.replay.storage import Sample

__all__ = [
    "ABS_TD",
    "BATCH_KIND",
    "DEMAND_KIND",
    "GENERATION",
    "INDEX",
    "MODES",
    "PRIORITIES_KIND",
    "WEIGHTS",
    "ServiceCounts",
    "apply_priorities",
    "token_arrays",
]


def token_arrays(token: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """A store's sample token as ``(index, generation, split)``: int64 arrays (agent rows
    first) and how many rows are agent rows (all of them outside Ape-X DQfD)."""
    if isinstance(token, MixedSample):
        parts = [s for s in (token.agent, token.expert) if s is not None]
        index = np.concatenate([np.asarray(s.indices, np.int64) for s in parts])
        generation = np.concatenate([np.asarray(s.generations, np.int64) for s in parts])
        return index, generation, int(token.n_agent)
    return shared.token_arrays(token)


def apply_priorities(
    store: Any, index: np.ndarray, generation: np.ndarray, abs_td: np.ndarray, split: int
) -> None:
    """``store.update`` from a token that travelled as arrays (see :func:`token_arrays`)."""
    if not isinstance(store, MixedStore):
        shared.apply_priorities(store, index, generation, abs_td, split)
        return
    n = len(index)

    def part(lo: int, hi: int) -> Sample | None:
        if hi <= lo:
            return None
        return Sample(index[lo:hi], np.ones(hi - lo, np.float32), {}, generation[lo:hi])

    weights = np.ones(n, np.float32)
    token = MixedSample({}, weights, split, n - split, part(0, split), part(split, n))
    store.update(token, abs_td)
