"""Loading the replay's compiled kernels before the first insert needs them.

The kernels are compiled once per machine and cached on disk, but each process still loads
every kernel's machine code on its first call: about 0.5 s for a prioritized replay here. A
learner that first calls them on its first insert pays that between the actors' first push and
its first update. :func:`load_kernels` makes those first calls on a throwaway replay of the same
fields, so a learner can pay it while it waits for the actors' first experience instead.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from rlfleet.replay.fields import Spec
from rlfleet.replay.prioritized import PrioritizedReplay

#: Slots of the throwaway replay, and items pushed / sampled (a push of several items, as a
#: learner's first insert is, so the batch code paths are the ones loaded).
_SLOTS, _ITEMS, _SAMPLED = 64, 8, 4


def load_kernels(fields: Mapping[str, Spec]) -> float:
    """Insert into, sample from and update the priorities of a throwaway prioritized replay of
    ``fields`` (frame-stacked fields load the frame store's kernels too); returns the seconds it
    took. The specialisations loaded are those of the same field dtypes, which is what a replay
    of ``fields`` then calls."""
    start = time.perf_counter()
    replay = PrioritizedReplay(_SLOTS, fields)
    batch = {
        name: np.zeros((_ITEMS, *spec.item_shape), spec.dtype) for name, spec in fields.items()
    }
    replay.add(batch, priorities=np.ones(_ITEMS))
    sample = replay.sample(_SAMPLED, 0.4)
    replay.update_priorities(sample.indices, np.ones(_SAMPLED), sample.generations)
    return time.perf_counter() - start
