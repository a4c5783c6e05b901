"""The IMPALA learner core: batches of B unrolls and the V-trace update. Served by
:class:`~rlfleet.agents.common.learner.LearnerShell` (publication, checkpoints, reports).

One data thread, **collect**: pulls unroll messages from the inbox, checks each at the boundary
(:func:`~rlfleet.agents.impala.messages.unroll_problem`: a malformed or foreign message is
counted and dropped, never crashes the learner) and stacks every B of them into one time-major
batch for the shell's bounded queue. When that queue is full the thread stops reading, the pipes
or the broker's list fill up, and actors block: backpressure, and a bound on policy lag.

Policy lag is measured at the update: the learner's parameter version minus the version that
acted each unroll of the batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlfleet.agents.common.learner import BatchQueue, CheckpointedCounters, LagMeter
from rlfleet.agents.impala.messages import unroll_problem
from rlfleet.agents.impala.network import build_network
from rlfleet.agents.impala.teacher import load_teacher
from rlfleet.agents.impala.unrolls import stack_unrolls
from rlfleet.agents.impala.update import ImpalaUpdate
from rlfleet.envs.spec import EnvSpec
from rlfleet.models import is_recurrent, update_obs_stats
from rlfleet.transport.codec import Message
from rlfleet.transport.ports import Inbox

#: ImpalaUpdate.step stats -> metric names (averaged over each report interval).
STAT_METRICS = {
    "loss": "learner/loss",
    "pg_loss": "learner/pg_loss",
    "baseline_loss": "learner/baseline_loss",
    "entropy": "learner/entropy",
    "rho_clip_fraction": "learner/rho_clip_fraction",
    "pg_rho_clip_fraction": "learner/pg_rho_clip_fraction",
    "grad_norm": "learner/grad_norm",
    "value_mean": "learner/value_mean",
    "lr": "learner/lr",
}
KICKSTART_METRICS = {
    "distill_loss": "learner/distill_loss",
    "kickstart_lambda": "learner/kickstart_lambda",
}


class ImpalaCounters(CheckpointedCounters):
    """What the learner counts; saved in checkpoints and continued on resume."""

    def __init__(self) -> None:
        super().__init__()
        self.unrolls = 0


class ImpalaLearner:
    """State and the collect thread of one IMPALA learner (a :class:`LearnerCore`)."""

    def __init__(self, config: Any, env: EnvSpec, seed: int) -> None:
        self.config = config
        self.env = env
        torch.manual_seed(seed)
        net = build_network(config, env)
        self.core_size = int(getattr(net, "lstm_size", 0)) if is_recurrent(net) else 0
        ks = config.kickstart
        teacher = load_teacher(ks.teacher, ks.temperature, env) if ks.teacher else None
        self.update = ImpalaUpdate(
            net,
            **config.update_args(),
            teacher=teacher,
            kickstart_schedule=ks.schedule,
            kickstart_lambda=ks.weight,
            kickstart_decay_steps=ks.decay_updates,
            kickstart_boundaries=ks.boundaries,
            kickstart_values=ks.values,
        )
        self.modules = {"online": self.update.net}
        self.optimizer = self.update.optimizer
        self.counters = ImpalaCounters()
        self.lock = threading.Lock()  # counters are written by the collect thread
        self.batches = BatchQueue(config.learner.prefetch_batches)
        self.lag = LagMeter()
        self.bad_messages = 0
        self.last_bad = ""
        self._pending: list[dict[str, np.ndarray]] = []
        self._stats: dict[str, list[float]] = {}

    # ---- collect thread ----------------------------------------------------------------------
    def loops(self, inbox: Inbox | None) -> dict[str, Callable[[], None]]:
        return {"collect": lambda: self.collect_once(inbox)}

    def collect_once(self, inbox: Inbox) -> None:
        """Pull, check, and hand over a stacked batch once B unrolls are pending."""
        b = self.config.learner.batch_size
        for message in inbox.pull(timeout=0.1, max_messages=b - len(self._pending)):
            unroll = self.accept(message)
            if unroll is not None:
                self._pending.append(unroll)
        if len(self._pending) >= b:
            batch = stack_unrolls(self._pending)
            self._pending = []
            self.batches.put(batch)

    def accept(self, message: Message) -> dict[str, np.ndarray] | None:
        """The unroll of ``message``, or None (counted) when it is not one this learner can use."""
        env = self.env
        problem = unroll_problem(
            message.arrays,
            self.config.algo.unroll_length,
            env.obs_shape,
            env.obs_dtype,
            env.num_actions if env.discrete else 0,
            self.core_size,
            action_dim=0 if env.discrete else env.action_dim,
        )
        if problem:
            self.bad_messages += 1
            self.last_bad = problem
            return None
        with self.lock:
            self.counters.unrolls += 1
            self.counters.env_steps += int(message.arrays["action"].size)
        return message.arrays

    # ---- updates -----------------------------------------------------------------------------
    def _set_lr(self) -> float:
        lc = self.config.learner
        lr = lc.lr
        if lc.lr_decay_updates:
            lr *= max(0.0, 1.0 - self.counters.updates / lc.lr_decay_updates)
        for group in self.update.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def learn(self, batch: dict[str, np.ndarray]) -> None:
        self.lag.add(self.counters.version - batch["policy_version"])
        lr = self._set_lr()
        out = self.update.step(batch)
        # the observations' running statistics (env.normalize_obs) follow the data trained on;
        # the shell publishes them with the parameters
        t = batch["reward"].shape[0]
        update_obs_stats(self.update.net, batch["obs"][:t].reshape(-1, *self.env.obs_shape))
        out["lr"] = lr
        for key, value in out.items():
            self._stats.setdefault(key, []).append(value)

    def before_serving(self, notice: Callable[[str], None]) -> None:
        self.update.updates = self.counters.updates  # the kickstart schedule continues

    # ---- reports and checkpoints -------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        means = {key: float(np.mean(values)) for key, values in self._stats.items() if values}
        names = dict(STAT_METRICS)
        if self.update.teacher is not None:
            names.update(KICKSTART_METRICS)
        metrics: dict[str, float | None] = {name: means.get(key) for key, name in names.items()}
        lag, lag_max = self.lag.take()
        metrics["params/version_lag_max"] = lag_max
        metrics["queue/batches"] = float(self.batches.qsize())
        self._stats.clear()
        return {
            "metrics": metrics,
            "progress": {"queued unrolls": self.batches.qsize() * self.config.learner.batch_size},
            "notice": None,
            "rejected": self.bad_messages,
            "version_lag": lag,
        }

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any], folder: Path) -> None:
        self.update.updates = self.counters.updates

    def snapshot(self) -> Callable[[Path], None] | None:
        return None
