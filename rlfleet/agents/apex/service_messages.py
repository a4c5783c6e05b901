"""What travels between a replay service and its learner (``transport.replay_service = true``):

```
 actors --experience--> [experience list] --> ReplayService: insert (limiter) -> store
                                              ReplayService: sample ahead -> [samples list]
 learner <--batches-- [samples list]          (fields, weights, token, service counters)
 learner --priorities--> [priorities list] --> ReplayService: update (stale ones ignored)
```

The message kinds and array names, the service's cumulative counters (:class:`ServiceCounts`,
carried in every batch's metadata) and a batch's token as arrays (:func:`token_arrays`,
:func:`apply_priorities`). The service is :mod:`rlfleet.agents.apex.service`, the learner's
side :mod:`rlfleet.agents.apex.remote_store`.

The token of a batch is ``(index, generation)`` arrays plus ``split`` (the agent rows of an
Ape-X DQfD batch; the rest are expert rows) and the service instance's id. A restarted service
gets a new id, and updates carrying another id are ignored (counted as ``foreign``); updates
for slots overwritten since they were sampled are skipped by the replay (generations).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from rlfleet.agents.apex.messages import BATCH_KIND, DEMAND_KIND, PRIORITIES_KIND
from rlfleet.agents.apex.mixed import MixedSample
from rlfleet.agents.apex.stores import MixedStore
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

#: Array names of a batch's weights and token (never replay field names).
WEIGHTS, INDEX, GENERATION = "sample_weights", "sample_index", "sample_generation"
ABS_TD = "abs_td"
MODES = ("train", "pretrain")


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
