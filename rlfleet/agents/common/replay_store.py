"""One replay behind the store interface the Ape-X family's learners and replay service use
(``add / draw / update``): :class:`ReplayStore`, a prioritized or uniform replay of an agent's
transition fields, and :class:`Drawn`, one batch drawn from any store.

Ape-X DPG's replay service holds a :class:`ReplayStore`; Ape-X DQN's stores
(:mod:`rlfleet.agents.apex.stores`) add DQfD's demonstrations. Not thread-safe: the caller holds
its lock around every call, as for a bare replay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rlfleet.replay import FieldSpec, PrioritizedReplay, UniformReplay

if TYPE_CHECKING:
    from rlfleet.agents.common.prioritized import ReplaySection

__all__ = ["Drawn", "ReplayStore", "build_replay"]


@dataclass
class Drawn:
    """One training batch: numpy fields, importance weights, and what priority updates need."""

    fields: dict[str, np.ndarray]
    weights: np.ndarray
    token: Any


def build_replay(
    section: ReplaySection,
    fields: Mapping[str, FieldSpec],
    seed: int,
    *,
    reserved: int = 0,
    reserved_priority_eps: float | None = None,
) -> PrioritizedReplay | UniformReplay:
    """The replay ``section.kind`` names, holding ``fields``, with ``reserved`` slots that are
    never evicted (DQfD's demonstrations) at their own priority bonus."""
    if section.kind == "prioritized":
        return PrioritizedReplay(
            section.capacity,
            dict(fields),
            alpha=section.alpha,
            priority_eps=section.priority_eps,
            reserved=reserved,
            seed=seed,
            reserved_priority_eps=reserved_priority_eps,
        )
    return UniformReplay(section.capacity, dict(fields), reserved=reserved, seed=seed)


class ReplayStore:
    """A single replay (prioritized or uniform) as a store; its token is
    ``(indices, generations)``. Items in its reserved region are demonstrations
    (``num_demos``); ``marks`` are constant fields every added batch gets (DQfD marks agent rows
    not-demo), the rest of ``build_replay``'s keywords as there."""

    def __init__(
        self,
        section: ReplaySection,
        fields: Mapping[str, FieldSpec],
        seed: int,
        *,
        reserved: int = 0,
        reserved_priority_eps: float | None = None,
        marks: Mapping[str, Any] | None = None,
    ) -> None:
        self.replay = build_replay(
            section, fields, seed, reserved=reserved, reserved_priority_eps=reserved_priority_eps
        )
        self.prioritized = section.kind == "prioritized"
        self.marks = dict(marks or {})

    @property
    def num_demos(self) -> int:
        return self.replay.num_reserved

    def __len__(self) -> int:
        return len(self.replay)

    def add(self, batch: dict[str, np.ndarray], priorities: np.ndarray) -> None:
        n = len(priorities)
        for name, value in self.marks.items():
            batch[name] = np.full(n, value, dtype=self.replay.fields[name].dtype)
        self.replay.add(batch, priorities if self.prioritized else None)

    def draw(self, batch_size: int, beta: float) -> Drawn:
        s = self.replay.sample(batch_size, beta)
        return Drawn(s.fields, np.asarray(s.weights, np.float32), (s.indices, s.generations))

    def update(self, token: Any, abs_td: np.ndarray) -> None:
        """New priorities of a drawn batch (ignored by a uniform replay; stale rows skipped)."""
        if self.prioritized:
            indices, generations = token
            self.replay.update_priorities(indices, abs_td, generations)

    def save(self, path: Path) -> None:
        self.replay.save(path)

    def load(self, path: Path) -> None:
        self.replay = type(self.replay).load(path)
