"""What the learner samples from: one replay (Ape-X, DQfD) or an agent + expert pair (Ape-X DQfD).

A store hides how many replays there are and where demonstrations live, so the learner's
threads only ``add`` actor batches, ``draw`` a training batch and ``update`` its priorities:

* :func:`single_store` -- Ape-X DQN (a :class:`~rlfleet.agents.common.replay_store.ReplayStore`); with DQfD the demonstrations sit in the replay's reserved
  region (never evicted, their own priority bonus) and agent items get ``is_demo = False``.
* :class:`MixedStore` -- Ape-X DQfD: a separate expert replay; every batch holds exactly
  ``expert_batch_split(batch_size, expert_fraction)`` items of each (agent rows first).

Neither is thread-safe: the learner holds its lock around every call, as for a bare replay.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rlfleet.agents.apex.config import ApexConfig
from rlfleet.agents.apex.messages import wants_one_step
from rlfleet.agents.apex.mixed import (
    MixedSample,
    imitation_mask,
    sample_mixed,
    update_mixed_priorities,
)
from rlfleet.agents.common.replay_store import Drawn, ReplayStore
from rlfleet.envs.spec import EnvSpec
from rlfleet.errors import ConfigError
from rlfleet.replay import FieldSpec, FrameStackSpec, PrioritizedReplay
from rlfleet.replay.demos import Demonstrations, demo_fields, load_demos

__all__ = [
    "Drawn",
    "MixedStore",
    "agent_fields",
    "build_store",
    "single_store",
    "load_run_demos",
]

#: Fields that mark demonstration items; agent rows get these constants.
DEMO_MARKS = {"is_demo": False, "imitate": False, "episode": -1}


def agent_fields(
    config: ApexConfig, obs_shape: tuple[int, ...], obs_dtype: np.dtype
) -> dict[str, Any]:
    """Replay fields of actor transitions; stacked 84x84 frames are stored once per frame."""
    if len(obs_shape) == 3 and obs_shape[1:] == (84, 84) and np.dtype(obs_dtype) == np.uint8:
        obs_spec: Any = FrameStackSpec(
            stack=obs_shape[0], frame_shape=obs_shape[1:], dtype=np.uint8
        )
    else:
        obs_spec = FieldSpec(shape=obs_shape, dtype=obs_dtype)
    scalar = FieldSpec(shape=(), dtype=np.float32)
    fields: dict[str, Any] = {
        "obs": obs_spec,
        "action": FieldSpec(shape=(), dtype=np.int64),
        "reward": scalar,
        "discount": scalar,
        "next_obs": obs_spec,
    }
    if wants_one_step(config):
        fields.update(reward_1=scalar, discount_1=scalar, next_obs_1=obs_spec)
    return fields


def load_run_demos(
    config: ApexConfig, obs_shape: tuple[int, ...], obs_dtype: np.dtype, num_actions: int
) -> Demonstrations:
    """The run's demonstration file, checked against its environment (names what differs)."""
    return load_demos(
        config.dqfd.demos,
        expect_env_id=config.env.id,
        expect_obs_shape=obs_shape,
        expect_obs_dtype=obs_dtype,
        expect_num_actions=num_actions,
    )


def _demo_transitions(
    config: ApexConfig, demos: Demonstrations, fields: dict[str, Any]
) -> dict[str, np.ndarray]:
    d = config.dqfd
    imitate = imitation_mask(demos.episode_returns, top_fraction=d.resolved("imitate_top_fraction"))
    items = demos.transitions(config.algo.n_step, config.algo.gamma, imitate_episodes=imitate)
    return {k: v for k, v in items.items() if k in fields}


def single_store(
    config: ApexConfig, fields: dict[str, Any], seed: int, demos: Demonstrations | None
) -> ReplayStore:
    """One replay; with DQfD, demonstrations fill its reserved region first and agent rows are
    marked not-demo (:data:`DEMO_MARKS`)."""
    r = config.replay
    if demos is None:
        return ReplayStore(r, fields, seed)
    # demonstrations and agent items share one layout; agent rows are marked not-demo
    fields = {
        **fields,
        **{
            k: v
            for k, v in demo_fields(demos.obs_shape, demos.obs_dtype).items()
            if k in DEMO_MARKS
        },
    }
    if demos.num_steps >= r.capacity:
        raise ConfigError(
            f"replay.capacity {r.capacity} must exceed the {demos.num_steps} demonstration steps"
        )
    store = ReplayStore(
        r,
        fields,
        seed,
        reserved=demos.num_steps,
        reserved_priority_eps=config.dqfd.demo_priority_eps,
        marks=DEMO_MARKS,
    )
    store.replay.add_reserved(_demo_transitions(config, demos, fields))
    return store


class MixedStore:
    """Ape-X DQfD: agent replay + expert replay, a fixed expert share in every batch."""

    def __init__(
        self, config: ApexConfig, fields: dict[str, Any], seed: int, demos: Demonstrations
    ) -> None:
        r = config.replay
        if r.kind != "prioritized":
            raise ConfigError("dqfd.mode = 'apex-dqfd' needs replay.kind = 'prioritized'")
        self.expert_fraction = config.dqfd.expert_fraction
        self.agent = PrioritizedReplay(
            r.capacity, fields, alpha=r.alpha, priority_eps=r.priority_eps, seed=seed
        )
        expert_fields = {
            **fields,
            **{
                k: v
                for k, v in demo_fields(demos.obs_shape, demos.obs_dtype).items()
                if k in ("imitate", "episode")
            },
        }
        # the expert replay holds the whole file; its own seed stream so the two never correlate
        self.expert = PrioritizedReplay(
            demos.num_steps + 1,
            expert_fields,
            alpha=r.alpha,
            priority_eps=r.priority_eps,
            seed=seed + 7919,
        )
        self.expert.add(_demo_transitions(config, demos, expert_fields))

    def __len__(self) -> int:
        return len(self.agent)

    @property
    def num_demos(self) -> int:
        return len(self.expert)

    def add(self, batch: dict[str, np.ndarray], priorities: np.ndarray) -> None:
        self.agent.add(batch, priorities)

    def draw(self, batch_size: int, beta: float) -> Drawn:
        mixed: MixedSample = sample_mixed(
            self.agent, self.expert, batch_size, beta, self.expert_fraction
        )
        return Drawn(mixed.fields, mixed.weights, mixed)

    def update(self, token: Any, abs_td: np.ndarray) -> None:
        update_mixed_priorities(token, abs_td, self.agent, self.expert)

    def save(self, path: Path) -> None:
        folder = Path(path)  # a checkpoint's temp folder: atomic with the checkpoint itself
        folder.mkdir()
        self.agent.save(folder / "agent")
        self.expert.save(folder / "expert")

    def load(self, path: Path) -> None:
        self.agent = PrioritizedReplay.load(Path(path) / "agent")
        self.expert = PrioritizedReplay.load(Path(path) / "expert")


def build_store(config: ApexConfig, env: EnvSpec, seed: int) -> ReplayStore | MixedStore:
    """The store a run's config asks for, demonstrations loaded and validated."""
    fields = agent_fields(config, env.obs_shape, env.obs_dtype)
    if not config.dqfd.enabled:
        return single_store(config, fields, seed, None)
    demos = load_run_demos(config, env.obs_shape, env.obs_dtype, env.num_actions)
    if config.dqfd.mode == "apex-dqfd":
        return MixedStore(config, fields, seed, demos)
    return single_store(config, fields, seed, demos)
