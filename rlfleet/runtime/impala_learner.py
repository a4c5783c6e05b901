"""The IMPALA learner role: batches of B unrolls, V-trace update, parameter publication.

Two threads:

* **collect**: pulls unroll messages from the inbox (blocking, with a timeout), validates each
  at the boundary (a malformed or foreign message is counted and dropped, never crashes the
  learner), and stacks every B of them into one time-major batch, handed over through a queue of
  ``learner.prefetch_batches``. When that queue is full the thread stops reading, the pipes or
  the Redis list fill up, and actors block: backpressure, and a bound on policy lag.
* **update** (main thread, :func:`rlfleet.runtime.learner_loop.serve`): ImpalaUpdate.step on each
  batch, publication every P updates, metrics, checkpoints.

Policy lag is measured at the update: the learner's parameter version minus the version that
acted each unroll of the batch.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlfleet.algorithms.impala import ImpalaUpdate
from rlfleet.algorithms.impala_actor import CORE_STATE_KEY, UNROLL_KEYS, stack_unrolls
from rlfleet.algorithms.params import flatten_into, param_count
from rlfleet.config import to_dict
from rlfleet.models import is_recurrent
from rlfleet.runtime import checkpoint as ckpt
from rlfleet.runtime.impala_config import ImpalaConfig
from rlfleet.runtime.learner_loop import CheckpointedCounters, serve
from rlfleet.runtime.policy_nets import build_network, env_spec, load_teacher
from rlfleet.transport.codec import Message

_STEP_SHAPED = {"action": "int64", "reward": "float32", "discount": "float32"}
_STEP_SHAPED.update(done="bool", truncated="bool")


def unroll_problem(
    arrays: dict[str, np.ndarray],
    unroll_length: int,
    obs_shape: tuple[int, ...],
    obs_dtype: np.dtype,
    num_actions: int,
    core_size: int = 0,
) -> str:
    """Why ``arrays`` (an unroll as it arrives) is not an unroll this learner can use, or "" (vectorised checks, no per-step Python loop).
    ``core_size`` is the learner's LSTM width (0: feed-forward, and no core state expected)."""
    missing = [key for key in UNROLL_KEYS if key not in arrays]
    if missing:
        return f"missing arrays {missing}; an unroll has {list(UNROLL_KEYS)}"
    if core_size and CORE_STATE_KEY not in arrays:
        return f"no {CORE_STATE_KEY}: the learner's network has an LSTM core of size {core_size}"
    if not core_size and CORE_STATE_KEY in arrays:
        return f"unexpected {CORE_STATE_KEY}: the learner's network has no LSTM core"
    t, obs_shape = unroll_length, tuple(obs_shape)
    obs = arrays["obs"]
    if obs.dtype != np.dtype(obs_dtype) or obs.ndim != 2 + len(obs_shape):
        return f"obs is {obs.dtype.name}{list(obs.shape)}, expected {np.dtype(obs_dtype).name}"
    k = obs.shape[1]
    if obs.shape[0] != t + 1 or obs.shape[2:] != obs_shape or k < 1:
        return f"obs has shape {list(obs.shape)}, expected [{t + 1}, K, {list(obs_shape)}]"
    for key, dtype in _STEP_SHAPED.items():
        a = arrays[key]
        if a.dtype.name != dtype or a.shape != (t, k):
            return f"{key} is {a.dtype.name}{list(a.shape)}, expected {dtype}[{t}, {k}]"
    logits = arrays["behaviour_logits"]
    if logits.dtype.name != "float32" or logits.shape != (t, k, num_actions):
        return f"behaviour_logits is {logits.dtype.name}{list(logits.shape)}, expected [{t}, {k}, {num_actions}]"
    final_obs, index = arrays["final_obs"], arrays["final_obs_index"]
    if final_obs.dtype != obs.dtype or final_obs.shape[1:] != obs_shape:
        return f"final_obs is {final_obs.dtype.name}{list(final_obs.shape)}"
    if index.dtype.name != "int64" or index.shape != (len(final_obs), 2):
        return f"final_obs_index is {index.dtype.name}{list(index.shape)}, expected [{len(final_obs)}, 2]"
    version = arrays["policy_version"]
    if version.dtype.name != "int64" or version.shape != ():
        return f"policy_version is {version.dtype.name}{list(version.shape)}, expected int64[]"
    if core_size:
        state = arrays[CORE_STATE_KEY]
        if state.dtype.name != "float32" or state.shape != (2, k, core_size):
            return (
                f"{CORE_STATE_KEY} is {state.dtype.name}{list(state.shape)}, expected"
                f" float32[2, {k}, {core_size}]"
            )
        if not np.isfinite(state).all():
            return f"non-finite {CORE_STATE_KEY}"
    if not (np.isfinite(arrays["reward"]).all() and np.isfinite(logits).all()):
        return "non-finite rewards or behaviour logits"
    discount = arrays["discount"]
    if not ((discount >= 0) & (discount <= 1)).all():
        return "discounts outside [0, 1]"
    action = arrays["action"]
    if ((action < 0) | (action >= num_actions)).any():
        return f"actions outside [0, {num_actions})"
    trunc = arrays["truncated"]
    if (trunc & ~arrays["done"]).any():
        return "truncated steps not marked done"
    if len(index):
        if ((index < 0) | (index >= np.array([t, k]))).any():
            return "final_obs_index points outside the unroll"
        flat = index[:, 0] * k + index[:, 1]
        if len(np.unique(flat)) != len(flat) or not trunc[index[:, 0], index[:, 1]].all():
            return "final_obs_index does not list distinct truncated steps"
    if int(trunc.sum()) != len(index):
        return f"{int(trunc.sum())} truncated steps but {len(index)} final observations"
    return ""


class ImpalaCounters(CheckpointedCounters):
    """What the learner counts; saved in checkpoints and continued on resume."""

    def __init__(self) -> None:
        self.updates = 0
        self.env_steps = 0
        self.unrolls = 0
        self.version = 0
        self.elapsed_s = 0.0


#: ImpalaUpdate.step stats -> metric names (averaged over each report interval).
STAT_METRICS = {
    "pg_loss": "learner/pg_loss",
    "baseline_loss": "learner/baseline_loss",
    "entropy": "learner/entropy",
    "rho_clip_fraction": "learner/rho_clip_fraction",
    "pg_rho_clip_fraction": "learner/pg_rho_clip_fraction",
    "grad_norm": "learner/grad_norm",
    "value_mean": "learner/value_mean",
}
KICKSTART_METRICS = {
    "distill_loss": "learner/distill_loss",
    "kickstart_lambda": "learner/kickstart_lambda",
}


class ImpalaLearner:
    """State and threads of one IMPALA learner."""

    def __init__(self, config: ImpalaConfig, run_dir: str | Path, seed: int) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        torch.manual_seed(seed)
        self.obs_shape, self.obs_dtype, self.num_actions = env_spec(config, seed)
        net = build_network(config, self.obs_shape, self.num_actions)
        self.core_size = int(getattr(net, "lstm_size", 0)) if is_recurrent(net) else 0
        ks = config.kickstart
        teacher = None
        if ks.teacher:
            teacher = load_teacher(ks.teacher, ks.temperature, self.obs_shape, self.num_actions)
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
        self.counters = ImpalaCounters()
        self.flat = np.empty(param_count(net), np.float32)
        self.batches: queue.Queue = queue.Queue(maxsize=config.learner.prefetch_batches)
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.bad_messages = 0
        self.last_bad = ""
        self._lock = threading.Lock()  # counters written by the collect thread
        self._stats: dict[str, list[float]] = {}
        self._lags: list[np.ndarray] = []
        self._wait_s = 0.0

    # ---- checkpoints -------------------------------------------------------------------------
    def restore(self, path: str | Path) -> None:
        tensors, optimizer_state, state = ckpt.load_checkpoint(path)
        online = {k[len("online.") :]: v for k, v in tensors.items() if k.startswith("online.")}
        self.update.net.load_state_dict(online)
        self.update.optimizer.load_state_dict(optimizer_state)
        if "torch_rng" in tensors:
            torch.set_rng_state(tensors["torch_rng"])
        self.counters.load(state["counters"])
        self.update.updates = self.counters.updates  # the kickstart schedule continues

    def save(self) -> Path:
        tensors = {f"online.{k}": v for k, v in self.update.net.state_dict().items()}
        tensors["torch_rng"] = torch.get_rng_state()
        with self._lock:
            counters = self.counters.state()
        state = {"counters": counters, "config": to_dict(self.config)}
        return ckpt.save_checkpoint(
            self.run_dir,
            self.counters.updates,
            tensors,
            self.update.optimizer.state_dict(),
            state,
            keep=self.config.run.keep_checkpoints,
        )

    # ---- collect thread ----------------------------------------------------------------------
    def collect_loop(self, inbox: Any) -> None:
        """Pull, validate, stack every B unrolls, hand the batch to the update loop."""
        b = self.config.learner.batch_size
        pending: list[dict[str, np.ndarray]] = []
        try:
            while not self.stop_event.is_set():
                for message in inbox.pull(timeout=0.1, max_messages=b - len(pending)):
                    unroll = self._accept(message)
                    if unroll is not None:
                        pending.append(unroll)
                if len(pending) >= b:
                    batch = stack_unrolls(pending)
                    pending = []
                    self._hand_over(batch)
        except BaseException as exc:  # surface to the main loop instead of dying silently
            self.error = exc
            self.stop_event.set()

    def _accept(self, message: Message) -> dict[str, np.ndarray] | None:
        problem = unroll_problem(
            message.arrays,
            self.config.algo.unroll_length,
            self.obs_shape,
            self.obs_dtype,
            self.num_actions,
            self.core_size,
        )
        if problem:
            self.bad_messages += 1
            self.last_bad = problem
            return None
        with self._lock:
            self.counters.unrolls += 1
            self.counters.env_steps += int(message.arrays["action"].size)
        return message.arrays

    def _hand_over(self, batch: dict[str, np.ndarray]) -> None:
        while not self.stop_event.is_set():
            try:
                self.batches.put(batch, timeout=0.1)
                return
            except queue.Full:
                continue

    # ---- update loop -------------------------------------------------------------------------
    def publish(self, sink: Any) -> None:
        flatten_into(self.update.net, self.flat)
        self.counters.version += 1
        sink.publish(self.flat, self.counters.version)

    def _set_lr(self) -> float:
        lc = self.config.learner
        lr = lc.lr
        if lc.lr_decay_updates:
            lr *= max(0.0, 1.0 - self.counters.updates / lc.lr_decay_updates)
        for group in self.update.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def step_once(self, timeout: float) -> bool:
        """Update on one batch; False if none was ready within ``timeout``."""
        start = time.perf_counter()
        try:
            batch = self.batches.get(timeout=timeout)
        except queue.Empty:
            self._wait_s += time.perf_counter() - start
            return False
        self._wait_s += time.perf_counter() - start
        self._lags.append(self.counters.version - batch["policy_version"])
        lr = self._set_lr()
        out = self.update.step(batch)
        self.counters.updates += 1
        out["lr"] = lr
        for key, value in out.items():
            self._stats.setdefault(key, []).append(value)
        return True

    def report(self, link: Any, since: float, updates_before: int, inbox: Any) -> None:
        dt = max(time.monotonic() - since, 1e-9)
        means = {key: float(np.mean(values)) for key, values in self._stats.items() if values}
        metrics = {name: means.get(key) for key, name in STAT_METRICS.items()}
        if self.update.teacher is not None:
            metrics.update({name: means.get(key) for key, name in KICKSTART_METRICS.items()})
        lags = np.concatenate(self._lags) if self._lags else None
        metrics["learner/lr"] = means.get("lr")
        metrics["params/version_lag_max"] = float(lags.max()) if lags is not None else None
        metrics["queue/batches"] = float(self.batches.qsize())
        with self._lock:
            counters = self.counters.state()
        link.send(
            "learner_stats",
            updates=self.counters.updates,
            env_steps=int(counters["env_steps"]),
            version=self.counters.version,
            updates_per_s=(self.counters.updates - updates_before) / dt,
            loss=means.get("loss"),
            version_lag=float(lags.mean()) if lags is not None else None,
            wait_fraction=self._wait_s / dt,
            rejected=int(getattr(inbox, "rejected", 0)) + self.bad_messages,
            queued_unrolls=self.batches.qsize() * self.config.learner.batch_size,
            metrics={k: v for k, v in metrics.items() if v is not None},
        )
        self._stats.clear()
        self._lags.clear()
        self._wait_s = 0.0


def run_impala_learner(
    config: ImpalaConfig,
    run_dir: str | Path,
    seed: int,
    inbox: Any,
    params: Any,
    link: Any,
    resume_from: str | None = None,
) -> None:
    """Learn until told to stop; then publish, checkpoint and report."""
    learner = ImpalaLearner(config, run_dir, seed)
    if resume_from:
        learner.restore(resume_from)
    collect = threading.Thread(
        target=learner.collect_loop, args=(inbox,), name="collect", daemon=True
    )
    serve(learner, config, inbox, params, link, [collect])
