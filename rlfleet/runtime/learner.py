"""The Ape-X learner role: owns the replay, inserts experience, samples ahead, updates.

Three threads share one replay under a lock (the replay kernels and torch release the GIL):

* **insert**: pulls experience messages from the inbox, adds them with the actors' priorities;
* **prefetch**: samples batches ahead into a bounded queue (respecting ``learning_starts`` and the
  samples-per-insert limit), so the update loop never waits on the replay;
* **update** (main thread): gradient step, priority update, target sync, parameter publication,
  checkpoints, metrics.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from rlfleet.algorithms.dqfd import DQfDConfig, DQfDUpdate, to_torch
from rlfleet.algorithms.dqn import DQNUpdate
from rlfleet.algorithms.params import flatten_into, param_count
from rlfleet.config import to_dict
from rlfleet.envs import check_discrete, make_vector_env
from rlfleet.models import build_q_network
from rlfleet.replay import SamplesPerInsertLimiter
from rlfleet.runtime import checkpoint as ckpt
from rlfleet.runtime.apex_config import ApexConfig
from rlfleet.runtime.learner_loop import CheckpointedCounters, serve
from rlfleet.runtime.stores import Drawn, agent_fields, build_store
from rlfleet.transport.codec import Message


class Inbox(Protocol):
    rejected: int

    def pull(self, timeout: float | None, max_messages: int = 64) -> list[Message]: ...


class ParamSink(Protocol):
    def publish(self, flat: np.ndarray, version: int) -> None: ...


class StatusLink(Protocol):
    def send(self, kind: str, **meta: Any) -> None: ...
    def poll_command(self, timeout: float = 0.0) -> str | None: ...


def build_limiter(config: ApexConfig) -> SamplesPerInsertLimiter:
    r = config.replay
    batch, push = config.learner.batch_size, config.actor.push_size
    tolerance = r.spi_tolerance or 10.0 * batch
    if r.samples_per_insert:
        # wide enough that one sample batch and one (largest) push always fit: no deadlock
        largest_push = push + config.env.envs_per_actor * config.algo.n_step
        tolerance = max(
            tolerance,
            SamplesPerInsertLimiter.min_error_buffer(r.samples_per_insert, batch, largest_push),
        )
    return SamplesPerInsertLimiter(
        samples_per_insert=r.samples_per_insert or None,
        min_size_to_sample=max(r.learning_starts, config.learner.batch_size),
        error_buffer=tolerance,
    )


def build_update(config: ApexConfig, net: torch.nn.Module) -> DQNUpdate | DQfDUpdate:
    """The Ape-X DQN update, with DQfD's extra loss terms composed on top when configured."""
    lc = config.learner
    update = DQNUpdate(
        net,
        lr=lc.lr,
        adam_eps=lc.adam_eps,
        grad_clip=lc.grad_clip,
        target_update_interval=lc.target_update_interval,
        double=config.algo.double,
        huber_delta=lc.huber_delta,
    )
    d = config.dqfd
    if not d.enabled:
        return update
    loss = DQfDConfig(
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
    return DQfDUpdate(update, loss)


#: DQfD loss parts reported as metrics (``learner/<name>``), when the update returns them.
LOSS_PARTS = ("j_dq", "j_n", "j_e", "l2", "tc")


class Counters(CheckpointedCounters):
    """What the learner counts; saved in checkpoints and continued on resume."""

    def __init__(self) -> None:
        self.updates = 0
        self.pretrain_updates = 0
        self.env_steps = 0
        self.inserted = 0
        self.sampled = 0
        self.version = 0
        self.elapsed_s = 0.0


class Learner:
    """State and threads of one Ape-X learner."""

    def __init__(
        self, config: ApexConfig, run_dir: str | Path, seed: int, store: Any = None
    ) -> None:
        """``store``: where batches come from instead of a local replay (the replay
        service's :class:`~rlfleet.runtime.remote_store.RemoteStore`)."""
        self.config = config
        self.run_dir = Path(run_dir)
        torch.manual_seed(seed)
        probe = make_vector_env(config.env.id, 1, seed, env_kwargs=config.env.kwargs or None)
        check_discrete(probe.action_space, config.env.id, algorithm="Ape-X DQN")
        self.obs_shape, self.obs_dtype = probe.obs_shape, probe.obs_dtype
        self.num_actions = probe.num_actions
        net = build_q_network(
            probe.obs_shape,
            probe.num_actions,
            torso=config.model.torso,
            hidden=config.model.hidden,
            dueling=config.model.dueling,
        )
        probe.close()
        lc = config.learner
        self.seed = seed
        self.update = build_update(config, net)
        # DQfDUpdate composes on a DQNUpdate: the optimizer and counters live in the base
        self.base_update: DQNUpdate = getattr(self.update, "base", self.update)
        self.fields = tuple(agent_fields(config, self.obs_shape, self.obs_dtype))
        if store is None:
            store = build_store(config, self.obs_shape, self.obs_dtype, self.num_actions, seed)
        self.store = store
        # a store that samples elsewhere inserts there too and hands over ready batches
        self.remote = bool(getattr(store, "remote", False))
        # When the replay service last delivered a batch (remote only): the progress line says
        # how long the learner has waited, instead of showing a silent 0 updates/s.
        self._last_remote_batch = time.monotonic()
        self.limiter = build_limiter(config)
        self.counters = Counters()
        self.flat = np.empty(param_count(net), np.float32)
        self.lock = threading.Lock()
        self.batches: queue.Queue = queue.Queue(maxsize=lc.prefetch_batches)
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        # metric accumulators (reset at each report)
        self._lag_sum = 0.0
        self._lag_count = 0
        self._wait_s = 0.0
        self._losses: list[float] = []
        self._q_means: list[float] = []
        self._parts: dict[str, list[float]] = {}
        self.bad_messages = 0

    # ---- checkpoints -------------------------------------------------------------------------
    def restore(self, path: str | Path) -> None:
        tensors, optimizer_state, state = ckpt.load_checkpoint(path)
        online = {k[len("online.") :]: v for k, v in tensors.items() if k.startswith("online.")}
        target = {k[len("target.") :]: v for k, v in tensors.items() if k.startswith("target.")}
        self.update.net.load_state_dict(online)
        self.update.target_net.load_state_dict(target)
        self.base_update.optimizer.load_state_dict(optimizer_state)
        if "torch_rng" in tensors:
            torch.set_rng_state(tensors["torch_rng"])
        self.counters.load(state["counters"])
        self.base_update.updates = self.counters.updates
        self.limiter.load_state_dict(state["limiter"])
        replay_dir = Path(path) / "replay"
        if replay_dir.exists():
            self.store.load(replay_dir)
        else:  # replay not snapshotted (demonstrations were reloaded): refill before learning
            self.limiter = build_limiter(self.config)

    def save(self) -> Path:
        with self.lock:
            net, target = self.update.net, self.update.target_net
            tensors = {f"online.{k}": v for k, v in net.state_dict().items()}
            tensors.update({f"target.{k}": v for k, v in target.state_dict().items()})
            tensors["torch_rng"] = torch.get_rng_state()
            state = {
                "counters": self.counters.state(),
                "limiter": self.limiter.state_dict(),
                "config": to_dict(self.config),
                "replay_size": len(self.store),
            }
            write_replay = self.store.save if self.config.run.snapshot_replay else None
            return ckpt.save_checkpoint(
                self.run_dir,
                self.counters.updates,
                tensors,
                self.base_update.optimizer.state_dict(),
                state,
                write_replay,
                keep=self.config.run.keep_checkpoints,
            )

    # ---- threads -----------------------------------------------------------------------------
    def insert_loop(self, inbox: Inbox) -> None:
        """Insert what actors push. While the samples-per-insert limit says the learner is
        behind, stop reading: the pipes fill up and the actors block (backpressure)."""
        push = self.config.actor.push_size
        try:
            while not self.stop_event.is_set():
                if not self.limiter.wait_insert(push, timeout=0.1):
                    continue
                for message in inbox.pull(timeout=0.1, max_messages=1):
                    self._insert(message)
        except BaseException as exc:  # surface to the main loop instead of dying silently
            self.error = exc
            self.stop_event.set()

    def _insert(self, message: Message) -> None:
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
            self._lag_sum += self.counters.version - int(message.meta.get("policy_version", 0))
            self._lag_count += 1
        self.limiter.record_insert(n)

    def beta(self) -> float:
        r = self.config.replay
        frac = min(1.0, self.counters.updates / r.beta_anneal_updates)
        return r.beta_start + (r.beta_end - r.beta_start) * frac

    def prefetch_loop(self) -> None:
        batch_size = self.config.learner.batch_size
        try:
            while not self.stop_event.is_set():
                if self.remote:
                    drawn = self._take_remote()
                    if drawn is None:
                        continue
                else:
                    if not self.limiter.wait_sample(batch_size, timeout=0.1):
                        continue
                    with self.lock:
                        drawn = self.store.draw(batch_size, self.beta())
                        self.counters.sampled += batch_size
                    self.limiter.record_sample(batch_size)
                item = self._to_batch(drawn)
                while not self.stop_event.is_set():
                    try:
                        self.batches.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:
            self.error = exc
            self.stop_event.set()

    def _take_remote(self) -> Drawn | None:
        """A batch the replay service sampled (under its own limiter), and what the service
        counted meanwhile: inserted items, env steps, samples, policy-version lag."""
        drawn = self.store.take(self.beta(), timeout=0.1)
        if drawn is None:
            return None
        self._last_remote_batch = time.monotonic()
        done = self.store.counts()
        with self.lock:
            self.counters.sampled += done.sampled
            self.counters.inserted += done.inserted
            self.counters.env_steps += done.env_steps
            self._lag_sum += self.counters.version * done.messages - done.policy_versions
            self._lag_count += done.messages
        return drawn

    def _to_batch(self, drawn: Drawn) -> tuple[Any, dict[str, torch.Tensor], torch.Tensor]:
        weights = drawn.weights
        if self.config.replay.weight_norm == "batch":
            # w_i is proportional to p_i^-beta, so dividing by the batch max gives the
            # batch-normalised weights exactly
            weights = weights / weights.max()
        return drawn.token, to_torch(drawn.fields), torch.from_numpy(np.ascontiguousarray(weights))

    def pretrain(self, link: StatusLink) -> None:
        """DQfD phase I: updates on demonstrations only, before any actor acts (the replay
        holds nothing else yet). Skipped on resume once done."""
        steps = (
            int(self.config.dqfd.resolved("pretrain_updates")) if self.config.dqfd.enabled else 0
        )
        batch_size = self.config.learner.batch_size
        last = time.monotonic()
        while self.counters.pretrain_updates < steps and not self.stop_event.is_set():
            with self.lock:
                drawn = self.store.draw(batch_size, self.beta())
            token, tensors, weights = self._to_batch(drawn)
            self._learn(token, tensors, weights)
            self.counters.pretrain_updates += 1
            if time.monotonic() - last >= self.config.run.log_interval_s:
                link.send("pretrain", done=self.counters.pretrain_updates, total=steps)
                last = time.monotonic()
        if steps:
            link.send("pretrain", done=self.counters.pretrain_updates, total=steps)

    def publish(self, sink: ParamSink) -> None:
        flatten_into(self.update.net, self.flat)
        self.counters.version += 1
        sink.publish(self.flat, self.counters.version)

    def step_once(self, timeout: float) -> bool:
        """Take one prefetched batch and update; False if none was ready within ``timeout``."""
        start = time.perf_counter()
        try:
            token, tensors, weights = self.batches.get(timeout=timeout)
        except queue.Empty:
            self._wait_s += time.perf_counter() - start
            return False
        self._wait_s += time.perf_counter() - start
        self._learn(token, tensors, weights)
        return True

    def _learn(self, token: Any, tensors: dict[str, torch.Tensor], weights: torch.Tensor) -> None:
        out = self.update.step(tensors, weights)
        with self.lock:
            self.store.update(token, out["abs_td"])
        self.counters.updates += 1
        self._losses.append(out["loss"])
        self._q_means.append(out["q_mean"])
        for name in LOSS_PARTS:
            if name in out:
                self._parts.setdefault(name, []).append(float(out[name]))

    def report(self, link: StatusLink, since: float, updates_before: int, inbox: Inbox) -> None:
        dt = max(time.monotonic() - since, 1e-9)
        with self.lock:
            size = len(self.store)
            lag = self._lag_sum / self._lag_count if self._lag_count else 0.0
            self._lag_sum, self._lag_count = 0.0, 0
        link.send(
            "learner_stats",
            updates=self.counters.updates,
            env_steps=self.counters.env_steps,
            version=self.counters.version,
            updates_per_s=(self.counters.updates - updates_before) / dt,
            loss=float(np.mean(self._losses)) if self._losses else None,
            q_mean=float(np.mean(self._q_means)) if self._q_means else None,
            replay_size=size,
            samples_per_insert=self.counters.sampled / max(self.counters.inserted, 1),
            version_lag=lag,
            wait_fraction=self._wait_s / dt,
            rejected=inbox.rejected + self.bad_messages,
            beta=self.beta(),
            replay_service_wait_s=(
                time.monotonic() - self._last_remote_batch if self.remote else None
            ),
            metrics={f"learner/{k}": float(np.mean(v)) for k, v in self._parts.items() if v},
        )
        self._parts.clear()
        self._losses.clear()
        self._q_means.clear()
        self._wait_s = 0.0


def run_learner(
    config: ApexConfig,
    run_dir: str | Path,
    seed: int,
    inbox: Inbox,
    params: ParamSink,
    link: StatusLink,
    resume_from: str | None = None,
    store: Any = None,
) -> None:
    """Learn until told to stop; then publish, checkpoint and report. With a ``store`` that
    samples remotely (the replay service), ``inbox`` only reports its ``rejected`` count: the
    service inserts, so there is no insert thread here. An ``inbox`` that is itself such a
    store (the replay service's ``RemoteStore``, as the wiring hands it over) is both."""
    if store is None and getattr(inbox, "remote", False):
        store = inbox
    learner = Learner(config, run_dir, seed, store)
    if resume_from:
        learner.restore(resume_from)
    learner.pretrain(link)
    threads = [threading.Thread(target=learner.prefetch_loop, name="prefetch", daemon=True)]
    if not learner.remote:
        insert = threading.Thread(
            target=learner.insert_loop, args=(inbox,), name="insert", daemon=True
        )
        threads.append(insert)
    serve(learner, config, inbox, params, link, threads)
