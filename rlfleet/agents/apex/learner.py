"""The Ape-X learner core: the store, its data threads, the update. Served by
:class:`~rlfleet.agents.common.learner.LearnerShell` (publication, checkpoints, reports).

Two data threads share the store under ``lock`` (the replay kernels and torch release the GIL):

* **insert**: pulls experience messages from the inbox and adds them with the actors'
  priorities, while the samples-per-insert limiter allows (else the actors block: backpressure);
* **prefetch**: samples batches ahead into the shell's bounded queue (respecting
  ``learning_starts`` and the limiter), so the update never waits on the replay.

With a replay service (``transport.replay_service``) the store is the service's
:class:`~rlfleet.agents.common.remote_store.RemoteStore`: the service inserts and samples, there is
no insert thread, and prefetch takes the service's ready batches.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlfleet.agents.apex.dqfd import DQfDConfig, dqfd_update_loss
from rlfleet.agents.apex.network import build_network
from rlfleet.agents.apex.stores import Drawn, agent_fields, build_store
from rlfleet.agents.apex.update import DQNUpdate, to_torch
from rlfleet.agents.common.learner import BatchQueue, CheckpointedCounters, LagMeter
from rlfleet.agents.common.prioritized import build_limiter as shared_limiter
from rlfleet.agents.common.remote_store import (
    SERVICE_WAIT_NOTICE_S as SERVICE_WAIT_NOTICE_S,  # re-exported: when the notice starts
)
from rlfleet.agents.common.remote_store import waiting_notice
from rlfleet.envs.spec import EnvSpec
from rlfleet.models import update_obs_stats
from rlfleet.replay import SamplesPerInsertLimiter, load_kernels
from rlfleet.transport.codec import Message
from rlfleet.transport.ports import Inbox

#: DQfD loss parts reported as metrics (``learner/<name>``), when the update returns them.
LOSS_PARTS = ("j_dq", "j_n", "j_e", "l2", "tc")


def build_limiter(config: Any) -> SamplesPerInsertLimiter:
    """The samples-per-insert limiter of a run (shared by the learner and the replay service)."""
    largest_push = config.actor.push_size + config.env.envs_per_actor * config.algo.n_step
    return shared_limiter(config.replay, config.learner.batch_size, largest_push)


def build_update(config: Any, net: torch.nn.Module) -> DQNUpdate:
    """The Ape-X DQN update; with DQfD, the same update with the DQfD loss."""
    lc, d = config.learner, config.dqfd
    loss = None
    if d.enabled:
        loss = dqfd_update_loss(
            DQfDConfig(
                one_step_weight=d.resolved("one_step_weight"),
                n_step_weight=d.resolved("n_step_weight"),
                margin_weight=d.resolved("margin_weight"),
                l2_weight=d.resolved("l2_weight"),
                margin=d.resolved("margin"),
                transformed=d.is_transformed,
                tc_weight=d.resolved("tc_weight"),
                gamma=config.algo.gamma,
                double=config.algo.double,
                huber_delta=lc.huber_delta,
            )
        )
    return DQNUpdate(
        net,
        lr=lc.lr,
        adam_eps=lc.adam_eps,
        grad_clip=lc.grad_clip,
        target_update_interval=lc.target_update_interval,
        double=config.algo.double,
        huber_delta=lc.huber_delta,
        loss=loss,
    )


class ApexCounters(CheckpointedCounters):
    """What the learner counts; saved in checkpoints and continued on resume."""

    def __init__(self) -> None:
        super().__init__()
        self.pretrain_updates = 0
        self.inserted = 0
        self.sampled = 0


class ApexLearner:
    """State and data threads of one Ape-X learner (a :class:`LearnerCore`)."""

    def __init__(self, config: Any, env: EnvSpec, seed: int, store: Any = None) -> None:
        """``store``: where batches come from instead of a local replay (the replay
        service's :class:`~rlfleet.agents.common.remote_store.RemoteStore`)."""
        self.config = config
        torch.manual_seed(seed)
        self.update = build_update(config, build_network(config, env))
        self.modules = {"online": self.update.net, "target": self.update.target_net}
        self.optimizer = self.update.optimizer
        field_specs = agent_fields(config, env.obs_shape, env.obs_dtype)
        self.fields = tuple(field_specs)
        self._unloaded_kernels: dict[str, Any] | None = field_specs  # see insert_once
        self.remote = store is not None
        self.store = store if store is not None else build_store(config, env, seed)
        self.limiter = build_limiter(config)
        self.counters = ApexCounters()
        self.lock = threading.Lock()
        self.batches = BatchQueue(config.learner.prefetch_batches)
        self.lag = LagMeter()
        # When the replay service last delivered a batch (remote only): the progress line says
        # how long the learner has waited, instead of showing a silent 0 updates/s.
        self.last_remote_batch = time.monotonic()
        self.bad_messages = 0
        self._losses: list[float] = []
        self._q_means: list[float] = []
        self._parts: dict[str, list[float]] = {}

    # ---- data threads ------------------------------------------------------------------------
    def loops(self, inbox: Inbox | None) -> dict[str, Callable[[], None]]:
        if self.remote:
            return {"prefetch": self.prefetch_once}
        return {"insert": lambda: self.insert_once(inbox), "prefetch": self.prefetch_once}

    def insert_once(self, inbox: Inbox) -> None:
        """Insert what actors pushed, while the limiter allows; else leave it in the inbox."""
        if self._unloaded_kernels is not None:
            # the first call: idle until the actors' first push, so load the replay's compiled
            # kernels now rather than on the first insert, between that push and the first update
            load_kernels(self._unloaded_kernels)
            self._unloaded_kernels = None
        if not self.limiter.wait_insert(self.config.actor.push_size, timeout=0.1):
            return
        for message in inbox.pull(timeout=0.1, max_messages=1):
            self.insert(message)

    def insert(self, message: Message) -> None:
        """Add one experience message to the store (a message without its fields is counted
        and dropped)."""
        arrays = message.arrays
        try:
            batch = {name: arrays[name] for name in self.fields}
            priorities = arrays["priority"]
        except KeyError:  # well-formed message without the fields of a transition batch
            self.bad_messages += 1
            return
        n = len(priorities)
        with self.lock:
            self.store.add(batch, priorities)
            self.counters.inserted += n
            self.counters.env_steps += int(message.meta.get("env_steps", 0))
            self.lag.add(
                np.array([self.counters.version - int(message.meta.get("policy_version", 0))])
            )
        self.limiter.record_insert(n)

    def beta(self) -> float:
        r = self.config.replay
        frac = min(1.0, self.counters.updates / r.beta_anneal_updates)
        return r.beta_start + (r.beta_end - r.beta_start) * frac

    def prefetch_once(self) -> None:
        """Draw (or take from the service) one batch and hand it to the update loop."""
        drawn = self.take_remote() if self.remote else self.draw_local()
        if drawn is not None:
            self.batches.put(self.to_batch(drawn))

    def draw_local(self) -> Drawn | None:
        batch_size = self.config.learner.batch_size
        if not self.limiter.wait_sample(batch_size, timeout=0.1):
            return None
        with self.lock:
            drawn = self.store.draw(batch_size, self.beta())
            self.counters.sampled += batch_size
        self.limiter.record_sample(batch_size)
        return drawn

    def take_remote(self) -> Drawn | None:
        """A batch the replay service sampled (under its own limiter), and what the service
        counted meanwhile: inserted items, env steps, samples, policy-version lag."""
        drawn = self.store.take(self.beta(), timeout=0.1)
        if drawn is None:
            return None
        self.last_remote_batch = time.monotonic()
        done = self.store.counts()
        with self.lock:
            self.counters.sampled += done.sampled
            self.counters.inserted += done.inserted
            self.counters.env_steps += done.env_steps
            self.lag.add_total(
                self.counters.version * done.messages - done.policy_versions, done.messages
            )
        return drawn

    def to_batch(self, drawn: Drawn) -> tuple[Any, dict[str, torch.Tensor], torch.Tensor]:
        """``(token, tensors, weights)``: what :meth:`learn` takes."""
        weights = drawn.weights
        if self.config.replay.weight_norm == "batch":
            # w_i is proportional to p_i^-beta, so dividing by the batch max gives the
            # batch-normalised weights exactly
            weights = weights / weights.max()
        return drawn.token, to_torch(drawn.fields), torch.from_numpy(np.ascontiguousarray(weights))

    # ---- updates -----------------------------------------------------------------------------
    def before_serving(self, notice: Callable[[str], None]) -> None:
        """DQfD phase I: updates on demonstrations only, before any actor acts (the replay
        holds nothing else yet; actors wait for the first publication). Skipped on resume
        once done."""
        d = self.config.dqfd
        steps = int(d.resolved("pretrain_updates")) if d.enabled else 0
        batch_size = self.config.learner.batch_size
        last = time.monotonic()
        while self.counters.pretrain_updates < steps:
            with self.lock:
                drawn = self.store.draw(batch_size, self.beta())
            self.learn(self.to_batch(drawn))
            self.counters.updates += 1
            self.counters.pretrain_updates += 1
            if time.monotonic() - last >= self.config.run.log_interval_s:
                notice(self._pretrain_text(steps))
                last = time.monotonic()
        if steps:
            notice(self._pretrain_text(steps))

    def _pretrain_text(self, steps: int) -> str:
        return (
            f"pre-training on demonstrations: update {self.counters.pretrain_updates:,} "
            f"of {steps:,}"
        )

    def learn(self, batch: tuple[Any, dict[str, torch.Tensor], torch.Tensor]) -> None:
        """One update; the new priorities go back to the store."""
        token, tensors, weights = batch
        out = self.update.step(tensors, weights)
        with self.lock:
            self.store.update(token, out["abs_td"])
        # env.normalize_obs: the statistics follow the observations trained on (prioritized
        # samples, so weighted towards surprising states); published with the parameters
        update_obs_stats(self.update.net, tensors["obs"])
        self._losses.append(out["loss"])
        self._q_means.append(out["q_mean"])
        for name in LOSS_PARTS:
            if name in out:
                self._parts.setdefault(name, []).append(float(out[name]))

    # ---- reports and checkpoints -------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        with self.lock:
            size = len(self.store)
        lag, _ = self.lag.take()
        waited = time.monotonic() - self.last_remote_batch if self.remote else 0.0
        notice = waiting_notice(waited)  # nothing moves without `rlfleet replay`
        metrics = {
            "learner/loss": float(np.mean(self._losses)) if self._losses else None,
            "learner/q_mean": float(np.mean(self._q_means)) if self._q_means else None,
            "replay/size": float(size),
            "replay/samples_per_insert": self.counters.sampled / max(self.counters.inserted, 1),
            "replay/beta": self.beta(),
            **{f"learner/{k}": float(np.mean(v)) for k, v in self._parts.items() if v},
        }
        self._parts.clear()
        self._losses.clear()
        self._q_means.clear()
        rejected = self.bad_messages + (int(self.store.rejected) if self.remote else 0)
        return {
            "metrics": metrics,
            "progress": {"replay": size},
            "notice": notice,
            "rejected": rejected,
            "version_lag": lag,
        }

    def state(self) -> dict[str, Any]:
        return {"limiter": self.limiter.state_dict(), "replay_size": len(self.store)}

    def load_state(self, state: dict[str, Any], folder: Path) -> None:
        self.update.updates = self.counters.updates  # the target-sync schedule continues
        self.limiter.load_state_dict(state["limiter"])
        replay_dir = Path(folder) / "replay"
        if replay_dir.exists():
            self.store.load(replay_dir)
        else:  # replay not snapshotted (demonstrations were reloaded): refill before learning
            self.limiter = build_limiter(self.config)

    def snapshot(self) -> Callable[[Path], None] | None:
        return self.store.save if self.config.run.snapshot_replay else None
