"""What travels between a replay service and its learner (``transport.replay_service = true``),
for every agent of the Ape-X family (Ape-X DQN and its DQfD variants, Ape-X DPG):

```
 actors --experience--> [experience list] --> ReplayService: insert (limiter) -> store
                                              ReplayService: sample ahead -> [samples list]
 learner <--batches-- [samples list]          (fields, weights, token, service counters)
 learner --priorities--> [priorities list] --> ReplayService: update (stale ones ignored)
```

The message kinds and array names, the service's cumulative counters (:class:`ServiceCounts`,
carried in every batch's metadata) and a plain store's batch token as arrays
(:func:`token_arrays`, :func:`apply_priorities`). What differs between agents is only which
transition fields a batch carries (the agent's message schema) and, for a store of several
replays, how its token travels (:class:`ServedReplay` of
:mod:`rlfleet.agents.common.replay_service` takes both from the agent). The service is
:mod:`rlfleet.agents.common.replay_service`, the learner's side
:mod:`rlfleet.agents.common.remote_store`.

The token of a batch is ``(index, generation)`` arrays plus ``split`` (the first ``split`` rows
are agent rows, the rest expert rows of Ape-X DQfD; ``split`` is the batch size elsewhere) and
the service instance's id. A restarted service gets a new id, and updates carrying another id
are ignored (counted as ``foreign``); updates for slots overwritten since they were sampled are
skipped by the replay (generations).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

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

#: Sampled batches, service -> learner.
BATCH_KIND = "replay_batch"
#: Priority updates, learner -> service.
PRIORITIES_KIND = "priorities"
#: The learner's mode and beta when it has nothing to update (learner -> service).
DEMAND_KIND = "replay_demand"
#: Array names of a batch's weights and token (never replay field names).
WEIGHTS, INDEX, GENERATION = "sample_weights", "sample_index", "sample_generation"
ABS_TD = "abs_td"
#: ``train``: sample under the limiter; ``pretrain``: demonstrations only (DQfD phase I).
MODES = ("train", "pretrain")


def token_arrays(token: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """A single replay's sample token ``(indices, generations)`` as ``(index, generation,
    split)``: int64 arrays, and every row an agent row."""
    indices, generations = token
    index = np.asarray(indices, np.int64)
    return index, np.asarray(generations, np.int64), len(index)


def apply_priorities(
    store: Any, index: np.ndarray, generation: np.ndarray, abs_td: np.ndarray, split: int
) -> None:
    """``store.update`` of a single replay from a token that travelled as arrays."""
    store.update((index, generation), abs_td)


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
