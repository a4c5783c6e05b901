"""The Ape-X DPG learner core: a feed of prioritized batches and the DDPG / TD3 update. Served by
:class:`~rlfleet.agents.common.learner.LearnerShell` (publication, checkpoints, reports).

The feed is a local prioritized replay with the shared Ape-X data threads
(:class:`~rlfleet.agents.common.prioritized.ReplayFeed`: insert with the actors' priorities,
prefetch with importance weights), or, with a replay service (``transport.replay_service``),
the batches the service sampled (:class:`~rlfleet.agents.common.remote_feed.RemoteFeed`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlfleet.agents.common.learner import BatchQueue, CheckpointedCounters, LagMeter
from rlfleet.agents.common.prioritized import ReplayFeed
from rlfleet.agents.common.remote_feed import RemoteFeed
from rlfleet.agents.dpg.messages import largest_push, replay_fields
from rlfleet.agents.dpg.network import build_network
from rlfleet.agents.dpg.update import DPGUpdate
from rlfleet.envs.spec import EnvSpec
from rlfleet.models import update_obs_stats
from rlfleet.transport.ports import Inbox


class DPGCounters(CheckpointedCounters):
    """What the learner counts; saved in checkpoints and continued on resume."""

    def __init__(self) -> None:
        super().__init__()
        self.inserted = 0
        self.sampled = 0


def build_update(config: Any, env: EnvSpec, seed: int) -> DPGUpdate:
    """The DDPG / TD3 update of a run's config."""
    lc, a = config.learner, config.algo
    return DPGUpdate(
        build_network(config, env),
        actor_lr=lc.actor_lr,
        critic_lr=lc.critic_lr,
        adam_eps=lc.adam_eps,
        tau=a.tau,
        target_noise=a.target_noise,
        target_noise_clip=a.target_noise_clip,
        policy_delay=a.policy_delay,
        grad_clip=lc.grad_clip,
        seed=seed,
    )


class DPGLearner:
    """State and data threads of one Ape-X DPG learner (a :class:`LearnerCore`)."""

    def __init__(self, config: Any, env: EnvSpec, seed: int, store: Any = None) -> None:
        """``store``: where batches come from instead of a local replay (the replay
        service's :class:`~rlfleet.agents.common.remote_store.RemoteStore`)."""
        self.config = config
        torch.manual_seed(seed)
        self.update = build_update(config, env, seed)
        self.modules = {"online": self.update.net, "target": self.update.target_net}
        self.optimizer = self.update.optimizer
        self.counters = DPGCounters()
        self.feed: ReplayFeed | RemoteFeed
        if store is not None:
            self.feed = RemoteFeed(store, self.counters, weight_norm=config.replay.weight_norm)
        else:
            push = config.actor.push_size
            self.feed = ReplayFeed(
                config.replay,
                replay_fields(env),
                seed,
                self.counters,
                batch_size=config.learner.batch_size,
                push_size=push,
                largest_push=largest_push(config),
            )
        self.lock = self.feed.lock
        self.batches = BatchQueue(config.learner.prefetch_batches)
        self.lag = LagMeter()
        self._losses: list[float] = []
        self._actor_losses: list[float] = []
        self._q_means: list[float] = []

    # ---- data threads ------------------------------------------------------------------------
    def loops(self, inbox: Inbox | None) -> dict[str, Callable[[], None]]:
        return self.feed.loops(inbox, self.batches.put, self.beta, self._inserted)

    def _inserted(self, messages: int, policy_versions: int) -> None:
        self.lag.add_total(self.counters.version * messages - policy_versions, messages)

    def beta(self) -> float:
        return self.config.replay.beta(self.counters.updates)

    # ---- updates -----------------------------------------------------------------------------
    def before_serving(self, notice: Callable[[str], None]) -> None:
        return None

    def learn(self, batch: tuple[Any, dict[str, np.ndarray], np.ndarray]) -> None:
        """One update; the new priorities go back to the replay."""
        token, fields, weights = batch
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in fields.items()}
        out = self.update.step(tensors, torch.from_numpy(weights))
        self.feed.update(token, out["abs_td"])
        # env.normalize_obs: the statistics follow the observations trained on
        update_obs_stats(self.update.net, tensors["obs"])
        self._losses.append(out["loss"])
        self._q_means.append(out["q_mean"])
        if "actor_loss" in out:
            self._actor_losses.append(out["actor_loss"])

    # ---- reports and checkpoints -------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        size = len(self.feed)
        lag, _ = self.lag.take()

        def mean(values: list[float]) -> float | None:
            return float(np.mean(values)) if values else None

        metrics = {
            "learner/loss": mean(self._losses),
            "learner/actor_loss": mean(self._actor_losses),
            "learner/q_mean": mean(self._q_means),
            "replay/size": float(size),
            "replay/samples_per_insert": self.counters.sampled / max(self.counters.inserted, 1),
            "replay/beta": self.beta(),
        }
        self._losses.clear()
        self._actor_losses.clear()
        self._q_means.clear()
        return {
            "metrics": metrics,
            "progress": {"replay": size},
            "notice": self.feed.notice(),
            "rejected": self.feed.rejected,
            "version_lag": lag,
        }

    def state(self) -> dict[str, Any]:
        return self.feed.state()

    def load_state(self, state: dict[str, Any], folder: Path) -> None:
        self.update.updates = self.counters.updates  # the policy-delay schedule continues
        self.feed.load_state(state, Path(folder) / "replay")

    def snapshot(self) -> Callable[[Path], None] | None:
        return self.feed.save if self.config.run.snapshot_replay else None
