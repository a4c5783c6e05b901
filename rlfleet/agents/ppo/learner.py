"""The PPO learner core: rollouts in, one PPO iteration per update, one policy version out.
Served by :class:`~rlfleet.agents.common.learner.LearnerShell` (publication after every update,
checkpoints, reports).

One data thread, **collect**: pulls rollouts (both transports checked them against
:func:`~rlfleet.agents.ppo.messages.rollout_problem`) and hands every ``rollouts_per_update`` of
them over as one stacked batch.

* **sync** (default): only rollouts acted by the current policy version are kept, and only the
  first B of them; rollouts of any other version, or beyond B, are discarded and counted
  (``ppo/discarded_rollouts``), as DAgger discards labels of other policies. Actors wait after
  their quota, so in steady state nothing is discarded.
* **async** (APPO): rollouts up to ``algo.max_lag`` versions old are kept; older ones are
  discarded and counted.

After each iteration the observation statistics (``env.normalize_obs``) take in the iteration's
observations, so the next version is published with them; the rollouts just trained on were
normalised with the previous statistics, exactly as their actors did.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlfleet.agents.common.learner import BatchQueue, CheckpointedCounters, LagMeter
from rlfleet.agents.common.trajectories import stack_trajectories
from rlfleet.agents.ppo.messages import STEP_KEYS
from rlfleet.agents.ppo.network import build_network
from rlfleet.agents.ppo.update import PPOUpdate
from rlfleet.envs.spec import EnvSpec
from rlfleet.models import update_obs_stats
from rlfleet.transport.codec import Message
from rlfleet.transport.ports import Inbox

#: PPOUpdate.iterate stats -> metric names (averaged over each report interval).
STAT_METRICS = {
    "loss": "learner/loss",
    "pg_loss": "ppo/pg_loss",
    "value_loss": "ppo/value_loss",
    "entropy": "learner/entropy",
    "approx_kl": "ppo/approx_kl",
    "clip_fraction": "ppo/clip_fraction",
    "grad_norm": "learner/grad_norm",
    "value_mean": "learner/value_mean",
    "explained_variance": "ppo/explained_variance",
    "behaviour_gap": "ppo/behaviour_log_prob_gap",
    "gradient_steps": "ppo/gradient_steps",
    "early_stop": "ppo/early_stop_fraction",
    "lr": "learner/lr",
    "clip_eps": "ppo/clip_eps",
}
#: Seconds without a usable rollout (sync mode) before the progress line says what it waits for.
STALL_NOTICE_S = 10.0


class PPOCounters(CheckpointedCounters):
    """What the learner counts; saved in checkpoints and continued on resume."""

    def __init__(self) -> None:
        super().__init__()
        self.rollouts = 0  # handed over for training (env_steps counts their steps)
        self.discarded = 0  # rollouts of another version (sync), too old (async), or beyond B
        self.discarded_env_steps = 0
        self.gradient_steps = 0


class PPOLearner:
    """The collect thread and the PPO iteration (a :class:`LearnerCore`)."""

    def __init__(self, config: Any, env: EnvSpec, seed: int) -> None:
        self.config = config
        self.env = env
        torch.manual_seed(seed)  # initial weights and minibatch orders (checkpointed RNG)
        self.net = build_network(config, env)
        self.update = PPOUpdate(self.net, config)
        self.modules = {"online": self.net}
        self.optimizer = self.update.optimizer
        self.counters = PPOCounters()
        self.lock = threading.Lock()  # counters are written by the collect thread
        self.batches = BatchQueue(1)
        self.lag = LagMeter()
        self.sync = config.algo.mode == "sync"
        self._pending: list[dict[str, np.ndarray]] = []
        self._queued_version = -1  # sync: the version whose batch is handed over
        self._last_useful = time.monotonic()
        self._stats: dict[str, list[float]] = {}

    # ---- collect thread ----------------------------------------------------------------------
    def loops(self, inbox: Inbox | None) -> dict[str, Callable[[], None]]:
        return {"collect": lambda: self.collect_once(inbox)}

    def collect_once(self, inbox: Inbox) -> None:
        """Pull rollouts; hand a stacked batch over once B usable ones are in."""
        b = self.config.learner.rollouts_per_update
        for message in inbox.pull(timeout=0.1, max_messages=b - len(self._pending)):
            self.accept(message)
        if len(self._pending) >= b:
            batch = stack_trajectories(self._pending, STEP_KEYS, what="rollout")
            with self.lock:
                self.counters.rollouts += len(self._pending)
                self.counters.env_steps += int(batch["reward"].size)
            self._pending = []
            # sync: this version's batch is closed; its later rollouts are surplus
            self._queued_version = self.counters.version
            self.batches.put(batch)

    def _usable(self, version: int) -> bool:
        current = self.counters.version
        if self.sync:  # the policy being trained acted it, and its batch is still open
            return version == current and self._queued_version != current
        # async: recent enough (pending never exceeds B: the thread pulls only what is missing)
        return current - version <= self.config.algo.max_lag

    def accept(self, message: Message) -> None:
        """Keep a rollout for the next batch, or discard it (counted)."""
        rollout = message.arrays
        if not self._usable(int(rollout["policy_version"])):
            self._discard([rollout])
            return
        self._pending.append(rollout)
        self._last_useful = time.monotonic()

    def _discard(self, rollouts: list[dict[str, np.ndarray]]) -> None:
        if not rollouts:
            return
        with self.lock:
            self.counters.discarded += len(rollouts)
            self.counters.discarded_env_steps += sum(int(r["reward"].size) for r in rollouts)

    # ---- updates -----------------------------------------------------------------------------
    def schedules(self) -> tuple[float, float]:
        """``(lr, clip_eps)`` at the current env-step count: constant, or linear to 0 over the
        annealing horizon (SB3's ``lin_X``)."""
        lc, a = self.config.learner, self.config.algo
        remaining = 1.0
        if lc.lr_schedule == "linear" or a.clip_anneal:
            remaining = max(0.0, 1.0 - self.counters.env_steps / self.config.anneal_steps)
        lr = lc.lr * (remaining if lc.lr_schedule == "linear" else 1.0)
        clip = a.clip_eps * (remaining if a.clip_anneal else 1.0)
        # a clip range of exactly 0 freezes the policy; keep a sliver of it
        return lr, max(clip, 1e-3 * a.clip_eps)

    def learn(self, batch: dict[str, np.ndarray]) -> None:
        """One PPO iteration, then the observation statistics take in its observations."""
        self.lag.add(self.counters.version - batch["policy_version"])
        lr, clip = self.schedules()
        self.update.set_lr(lr)
        out = self.update.iterate(batch, clip)
        t = batch["reward"].shape[0]
        update_obs_stats(self.net, batch["obs"][:t].reshape(-1, *self.env.obs_shape))
        with self.lock:
            self.counters.gradient_steps += int(out["gradient_steps"])
        self._last_useful = time.monotonic()  # a stall is counted from the new version on
        out.update(lr=lr, clip_eps=clip)
        for key, value in out.items():
            self._stats.setdefault(key, []).append(value)

    def before_serving(self, notice: Callable[[str], None]) -> None:
        return None

    # ---- reports and checkpoints -------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        means = {key: float(np.mean(values)) for key, values in self._stats.items() if values}
        metrics: dict[str, float | None] = {
            name: means.get(key) for key, name in STAT_METRICS.items()
        }
        lag, lag_max = self.lag.take()
        c = self.counters
        metrics.update(
            {
                "params/version_lag_max": lag_max,
                "ppo/rollouts": float(c.rollouts),
                "ppo/discarded_rollouts": float(c.discarded),
                "ppo/discarded_env_steps": float(c.discarded_env_steps),
            }
        )
        self._stats.clear()
        notice = None
        waited = time.monotonic() - self._last_useful
        if self.sync and waited >= STALL_NOTICE_S:
            b = self.config.learner.rollouts_per_update
            notice = (
                f"waiting {waited:.0f} s for rollouts of policy version {c.version}: "
                f"{len(self._pending)} of {b} in (each actor sends actor.rollouts_per_version "
                "per version; fewer actors than that needs stalls sync mode)"
            )
        return {
            "metrics": metrics,
            "progress": {"rollouts": c.rollouts, "discarded": c.discarded},
            "notice": notice,
            "rejected": 0,
            "version_lag": lag,
        }

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any], folder: Path) -> None:
        return None

    def snapshot(self) -> Callable[[Path], None] | None:
        return None
