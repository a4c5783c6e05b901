"""Ape-X DQfD's batches: an agent replay and an expert replay mixed at a fixed share.

Every learner batch holds exactly ``expert_batch_split(batch_size, expert_fraction)`` items of
each (agent rows first) with an ``is_demo`` mask; new priorities go back to the replay each part
came from. :func:`imitation_mask` picks the expert episodes the margin loss imitates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from rlfleet.errors import ConfigError
from rlfleet.math.dqfd import best_episodes_mask, expert_batch_split
from rlfleet.replay.storage import Sample


class _Replay(Protocol):
    def sample(self, batch_size: int, beta: float) -> Sample: ...

    def update_priorities(
        self, indices: np.ndarray, priorities: np.ndarray, generations: np.ndarray
    ) -> int: ...


@dataclass
class MixedSample:
    """An agent sample and an expert sample concatenated into one batch (agent rows first).

    ``fields`` carries every field of both samples plus ``is_demo`` (False for the first
    ``n_agent`` rows, True for the last ``n_expert``); ``weights`` are each replay's own
    importance weights, concatenated.
    """

    fields: dict[str, np.ndarray]
    weights: np.ndarray
    n_agent: int
    n_expert: int
    agent: Sample | None
    expert: Sample | None


def compose_batch(agent: Sample | None, expert: Sample | None) -> MixedSample:
    """Concatenate two samples into one batch with an ``is_demo`` mask (either may be None).

    The expert sample must have every field of the agent sample (it may have more, e.g.
    ``imitate``); fields the agent lacks get agent rows of False / 0 / -1 (``episode``).
    """
    parts = [s for s in (agent, expert) if s is not None]
    if not parts:
        raise ConfigError("compose_batch needs at least one of agent or expert samples")
    n_agent = 0 if agent is None else len(agent.indices)
    n_expert = 0 if expert is None else len(expert.indices)
    names: list[str] = []
    for s in parts:
        names += [k for k in s.fields if k not in names and k != "is_demo"]
    fields: dict[str, np.ndarray] = {}
    for name in names:
        cols = []
        for s, count in ((agent, n_agent), (expert, n_expert)):
            if s is None:
                continue
            if name in s.fields:
                cols.append(s.fields[name])
            elif s is expert:
                raise ConfigError(
                    f"expert sample lacks field {name!r}; it has {sorted(expert.fields)}"
                )
            else:
                ref = expert.fields[name]  # type: ignore[union-attr]
                fill = -1 if name == "episode" else 0
                cols.append(np.full((count, *ref.shape[1:]), fill, dtype=ref.dtype))
        fields[name] = np.concatenate(cols)
    fields["is_demo"] = np.concatenate([np.zeros(n_agent, bool), np.ones(n_expert, bool)])
    weights = np.concatenate([s.weights for s in parts]).astype(np.float32)
    return MixedSample(fields, weights, n_agent, n_expert, agent, expert)


def sample_mixed(
    agent_replay: _Replay,
    expert_replay: _Replay,
    batch_size: int,
    beta: float,
    expert_fraction: float = 0.25,
) -> MixedSample:
    """Ape-X DQfD's learner batch: exactly ``expert_batch_split(batch_size, expert_fraction)``
    items from each replay (75% actor / 25% expert by default), concatenated."""
    n_agent, n_expert = expert_batch_split(batch_size, expert_fraction)
    agent = agent_replay.sample(n_agent, beta) if n_agent else None
    expert = expert_replay.sample(n_expert, beta) if n_expert else None
    return compose_batch(agent, expert)


def update_mixed_priorities(
    mixed: MixedSample, abs_td: np.ndarray, agent_replay: _Replay, expert_replay: _Replay
) -> None:
    """Send each part's new ``|TD|`` back to the replay it came from."""
    if mixed.agent is not None:
        a = mixed.agent
        agent_replay.update_priorities(a.indices, abs_td[: mixed.n_agent], a.generations)
    if mixed.expert is not None:
        e = mixed.expert
        expert_replay.update_priorities(e.indices, abs_td[mixed.n_agent :], e.generations)


def imitation_mask(
    episode_returns: np.ndarray, top_fraction: float | None = None, top_k: int | None = None
) -> np.ndarray:
    """Per-episode bool mask of the best expert episodes, for ``transitions(imitate_episodes=)``."""
    returns = torch.as_tensor(np.asarray(episode_returns, dtype=np.float64))
    return best_episodes_mask(returns, top_fraction=top_fraction, top_k=top_k).numpy()
