"""The DAgger learner core: the aggregate dataset D, iterations, and the classifier's update.
Served by :class:`~rlfleet.agents.common.learner.LearnerShell`.

D is a :class:`~rlfleet.replay.UniformReplay` (the replay engine's storage: frame-deduplicated
image fields, snapshots) holding ``obs`` and ``expert_action``; batches are drawn uniformly from
all of it. Iterations are synchronous, as in the algorithm: policy version v is iteration v's
learner, and D takes exactly ``dagger.labels_per_iteration`` labels of states that policy
visited. Labels acted by any other version (an actor still holding the previous policy, or
states visited after the iteration's quota was met) are discarded (``dagger/discarded``): they
are not the iteration's distribution. Once the quota is in, the core grants
``learner.updates_per_iteration`` updates on D and stops reading labels (actors block: no env
steps are spent on data the iteration cannot take); the shell publishes after exactly that many
updates (``learner.publish_interval`` is the same number), which starts the next iteration. At
the label budget collection ends for good and the learner keeps training on D, one iteration of
updates per publication.

Two data threads: **insert** (labels into D) and **prefetch** (granted batches from D).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rlfleet.agents.common.learner import BatchQueue, CheckpointedCounters, LagMeter
from rlfleet.agents.common.optim import make_adam
from rlfleet.agents.dagger.network import build_network
from rlfleet.envs.spec import EnvSpec
from rlfleet.models import update_obs_stats
from rlfleet.replay import FieldSpec, FrameStackSpec, UniformReplay
from rlfleet.transport.codec import Message
from rlfleet.transport.ports import Inbox


def dataset_fields(env: EnvSpec) -> dict[str, Any]:
    """D's fields; stacked 84x84 frames are stored once per frame."""
    shape, dtype = tuple(env.obs_shape), np.dtype(env.obs_dtype)
    if len(shape) == 3 and shape[1:] == (84, 84) and dtype == np.uint8:
        obs: Any = FrameStackSpec(stack=shape[0], frame_shape=shape[1:], dtype=np.uint8)
    else:
        obs = FieldSpec(shape=shape, dtype=dtype)
    return {"obs": obs, "expert_action": FieldSpec(shape=(), dtype=np.int64)}


class DaggerCounters(CheckpointedCounters):
    """What the learner counts; saved in checkpoints and continued on resume."""

    def __init__(self) -> None:
        super().__init__()
        self.labels = 0  # in D, all iterations
        self.discarded = 0  # labels of states another policy visited
        self.granted = 0  # updates allowed so far


class DaggerLearner:
    """D, its two data threads and the cross-entropy update (a :class:`LearnerCore`)."""

    def __init__(self, config: Any, env: EnvSpec, seed: int) -> None:
        self.config = config
        self.env = env
        torch.manual_seed(seed)
        self.net = build_network(config, env)
        self.modules = {"online": self.net}
        self.optimizer = make_adam(self.net.parameters(), lr=config.learner.lr, eps=1e-8)
        self.store = UniformReplay(config.dagger.store_capacity, dataset_fields(env), seed=seed)
        self.counters = DaggerCounters()
        self.lock = threading.Lock()
        self.batches = BatchQueue(config.learner.prefetch_batches)
        self.lag = LagMeter()
        self.drawn = 0  # batches handed to the shell (<= counters.granted)
        # the policy version whose iteration was granted last: one grant per published policy,
        # so an iteration trains exactly updates_per_iteration and the shell then publishes
        self.granted_version = 0
        self.labels_by_version: dict[int, int] = {}
        self.collected = 0  # labels acted by collect_version, the current policy
        self.collect_version = 0
        self._losses: list[float] = []
        self._accuracies: list[float] = []

    # ---- the budget and the iterations ------------------------------------------------------
    @property
    def budget_left(self) -> int | None:
        """Labels D may still take (None: no budget)."""
        budget = self.config.dagger.max_labels
        return None if not budget else max(0, budget - self.counters.labels)

    def _grant(self) -> None:
        """Under ``lock``: allow the next iteration's updates once a new policy has been
        published since the last grant and its labels are in (or no more labels will come)."""
        version = self.counters.version
        # D's size when each policy was published: what the policy was trained on
        self.labels_by_version.setdefault(version, self.counters.labels)
        if version == self.granted_version:
            return  # training this policy's iteration, or waiting for the shell to publish
        if self.collect_version != version:
            self.collect_version, self.collected = version, 0
        quota_met = self.collected >= self.config.dagger.labels_per_iteration
        if quota_met or (self.budget_left == 0 and self.counters.labels > 0):
            self.counters.granted += self.config.learner.updates_per_iteration
            self.granted_version = version

    # ---- data threads ------------------------------------------------------------------------
    def loops(self, inbox: Inbox | None) -> dict[str, Callable[[], None]]:
        return {"insert": lambda: self.insert_once(inbox), "prefetch": self.prefetch_once}

    def _collecting(self) -> bool:
        """Under ``lock``: whether the current iteration still takes labels."""
        if self.budget_left == 0:
            return False
        if self.collect_version != self.counters.version:
            return True  # a new policy: its quota is open
        return self.collected < self.config.dagger.labels_per_iteration

    def insert_once(self, inbox: Inbox) -> None:
        with self.lock:
            collecting = self._collecting()
        if not collecting:
            time.sleep(0.05)  # training, or the budget is spent: actors block on the full queue
            return
        for message in inbox.pull(timeout=0.1, max_messages=1):
            self.insert(message)

    def insert(self, message: Message) -> None:
        """Add one labels message to D if the current policy acted it, clipped to the
        iteration's quota and the budget; anything else is discarded (inboxes have checked its
        shapes and values: :func:`~rlfleet.agents.dagger.messages.message_check`)."""
        obs, labels = message.arrays["obs"], message.arrays["expert_action"]
        version = int(message.meta.get("policy_version", 0))
        with self.lock:
            # D's size when each policy was published (D does not grow while a policy trains)
            self.labels_by_version.setdefault(self.counters.version, self.counters.labels)
            if self.collect_version != self.counters.version:
                self.collect_version, self.collected = self.counters.version, 0
            quota = self.config.dagger.labels_per_iteration - self.collected
            left = self.budget_left
            n = min(len(labels), quota, len(labels) if left is None else left)
            if version != self.collect_version or n <= 0:
                self.counters.discarded += len(labels)
                return
            self.store.add({"obs": obs[:n], "expert_action": labels[:n]})
            self.counters.labels += n
            self.counters.discarded += len(labels) - n
            self.counters.env_steps += int(message.meta.get("env_steps", 0)) * n // len(labels)
            self.collected += n
            self.lag.add(np.array([self.counters.version - version]))
            self._grant()

    def prefetch_once(self) -> None:
        """Draw one granted batch from D (uniformly) for the update loop; idle otherwise."""
        with self.lock:
            self._grant()
            if self.drawn >= self.counters.granted:
                batch = None
            else:
                sample = self.store.sample(self.config.learner.batch_size)
                self.drawn += 1
                batch = {
                    k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sample.fields.items()
                }
        if batch is None:
            time.sleep(0.02)  # waiting for this iteration's labels
        else:
            self.batches.put(batch)

    # ---- updates -----------------------------------------------------------------------------
    def learn(self, batch: dict[str, torch.Tensor]) -> None:
        """One cross-entropy step towards the expert's labels."""
        logits = self.net(batch["obs"])
        target = batch["expert_action"]
        loss = F.cross_entropy(logits, target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self._losses.append(float(loss.detach()))
        self._accuracies.append(float((logits.detach().argmax(dim=1) == target).float().mean()))
        update_obs_stats(self.net, batch["obs"])  # env.normalize_obs: statistics of D's states

    def before_serving(self, notice: Callable[[str], None]) -> None:
        return None

    # ---- reports and checkpoints -------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        lag, _ = self.lag.take()
        d = self.config.dagger
        metrics = {
            "learner/loss": float(np.mean(self._losses)) if self._losses else None,
            "learner/accuracy": float(np.mean(self._accuracies)) if self._accuracies else None,
            "dagger/labels": float(self.counters.labels),
            "dagger/discarded": float(self.counters.discarded),
            "dagger/iteration": float(self.counters.version),
            "dagger/beta": d.beta(self.counters.version),
        }
        self._losses.clear()
        self._accuracies.clear()
        return {
            "metrics": metrics,
            "progress": {"labels": self.counters.labels, "iteration": self.counters.version},
            "notice": None,
            "rejected": 0,
            "version_lag": lag,
        }

    def state(self) -> dict[str, Any]:
        labels = {str(v): n for v, n in sorted(self.labels_by_version.items())}
        return {"dataset_size": len(self.store), "labels_by_version": labels}

    def load_state(self, state: dict[str, Any], folder: Path) -> None:
        dataset = Path(folder) / "replay"
        if dataset.exists():
            self.store = UniformReplay.load(dataset)
        self.drawn = min(self.counters.updates, self.counters.granted)
        self.labels_by_version = {int(v): int(n) for v, n in state["labels_by_version"].items()}

    def snapshot(self) -> Callable[[Path], None]:
        """D is the learner's state (a few thousand labelled states): always checkpointed."""
        return self.store.save
