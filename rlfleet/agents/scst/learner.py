"""The sequence learner core: supervised pre-training or self-critical sequence training.
Served by :class:`~rlfleet.agents.common.learner.LearnerShell` (publication, checkpoints, reports).

The model-specific parts come from the run's family (:mod:`rlfleet.agents.scst.family`): an
encoder-decoder (XE) or a CTC recognizer; what follows holds for both.

* **xe**: a data thread draws ``learner.batch_size`` train sources and the update is the
  family's supervised loss (teacher-forced cross-entropy; CTC for a recognizer). Actors idle.
* **scst**: a data thread collects the actors' ``sequences`` messages and hands
  ``learner.batch_size`` groups (one source: its greedy decode and k samples) over as a batch.
  The update recomputes the samples' log-probabilities with the current parameters and takes
  the SCST policy-gradient step (:mod:`rlfleet.math.scst`), with optional entropy and XE terms.

**Staleness** (V-trace style, not on-policy waiting): actors never wait for the learner.
Decoding is the expensive half of SCST (1 + k decodes per source against one teacher-forced
pass), so making actors wait for every version would leave them idle for the update and the
learner idle for the decodes. Instead each batch carries the version that decoded it; groups
more than ``scst.max_lag`` versions old are discarded (counted), and younger ones are corrected
by per-token importance weights ``min(rho_bar, pi / mu)``. With one actor and
``publish_interval = 1`` the lag is 0-1 versions. The greedy baseline is the actor's greedy
decode with the same (behaviour) version as the samples.

Dev error rates (greedy, ``scst.dev_words`` sources) are measured every ``scst.dev_interval_s``
and reported as ``seq/dev_<name>`` (``per``, ``wer`` for G2P; ``cer``, ``word_acc`` for OCR).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlfleet.agents.common.checkpoint import load_weights, resolve_checkpoint
from rlfleet.agents.common.learner import BatchQueue, CheckpointedCounters, LagMeter
from rlfleet.agents.common.optim import make_adam
from rlfleet.agents.scst.family import family_of
from rlfleet.agents.scst.messages import OUTPUT_KEYS
from rlfleet.envs.spec import EnvSpec
from rlfleet.math.scst import masked_entropy, scst_advantages, scst_loss
from rlfleet.transport.codec import Message
from rlfleet.transport.ports import Inbox


class ScstCounters(CheckpointedCounters):
    def __init__(self) -> None:
        super().__init__()
        self.sources = 0  # sources trained on (XE) or groups (SCST)
        self.decoded = 0  # outputs received from actors
        self.discarded = 0  # groups older than scst.max_lag


class ScstLearner:
    """XE pre-training or SCST (module docstring)."""

    def __init__(self, config: Any, env: EnvSpec, seed: int) -> None:
        self.config = config
        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.family = family_of(config)
        self.task = self.family.task
        self.keys = (*self.family.source_schema(), *OUTPUT_KEYS)
        self.net = self.family.build_network()
        sc = config.scst
        if sc.init_from:
            tensors, _ = load_weights(resolve_checkpoint(sc.init_from))
            self.net.load_state_dict(
                {k[len("online.") :]: v for k, v in tensors.items() if k.startswith("online.")}
            )
        self.net.train()
        self.modules = {"online": self.net}
        self.optimizer = make_adam(
            self.net.parameters(), config.learner.lr, config.learner.adam_eps
        )
        self.counters = ScstCounters()
        self.lock = threading.Lock()
        self.xe = sc.phase == "xe"
        self.batches = BatchQueue(maxsize=config.learner.prefetch_batches)
        self.group = config.group_size
        self._pending: list[dict[str, np.ndarray]] = []
        self._pending_groups = 0
        self.lag = LagMeter()
        self._stats: dict[str, list[float]] = {}
        self._dev: dict[str, float] = {}
        self._last_dev = -float("inf")
        self._decoded_since, self._since = 0, time.monotonic()

    # ---- data threads ------------------------------------------------------------------------
    def loops(self, inbox: Inbox | None) -> dict[str, Callable[[], None]]:
        if self.xe:
            return {"prefetch": self.prefetch_once}
        return {"collect": lambda: self.collect_once(inbox)}

    def prefetch_once(self) -> None:
        self.batches.put(self.family.supervised_batch(self.rng, self.config.learner.batch_size))

    def collect_once(self, inbox: Inbox) -> None:
        for message in inbox.pull(timeout=0.1, max_messages=4):
            self.accept(message)
        need = self.config.learner.batch_size
        if self._pending_groups >= need:
            stacked = {
                k: np.concatenate([p[k] for p in self._pending]) for k in (*self.keys, "version")
            }
            n = need * self.group
            self._pending = (
                [{k: v[n:] for k, v in stacked.items()}] if len(stacked["row"]) > n else []
            )
            self._pending_groups -= need
            self.batches.put({k: v[:n] for k, v in stacked.items()})

    def accept(self, message: Message) -> None:
        version = int(message.meta.get("policy_version", 0))
        rows = len(message.arrays["row"])
        with self.lock:
            self.counters.decoded += rows
            self._decoded_since += rows
            self.counters.env_steps += int(message.meta.get("env_steps", 0))
            if self.counters.version - version > self.config.scst.max_lag:
                self.counters.discarded += rows // self.group
                return
        self.lag.add(np.array([self.counters.version - version]))
        arrays = dict(message.arrays)
        arrays["version"] = np.full(rows, version, np.int64)
        self._pending.append(arrays)
        self._pending_groups += rows // self.group

    # ---- updates -----------------------------------------------------------------------------
    def _step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.learner.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.config.learner.grad_clip)
        self.optimizer.step()

    def _note(self, **values: float) -> None:
        for k, v in values.items():
            self._stats.setdefault(k, []).append(float(v))

    def learn(self, batch: dict[str, Any]) -> None:
        with self.lock:
            if self.xe:
                loss, sources, steps = self.family.supervised_loss(self.net, batch)
                self._step(loss)
                self.counters.sources += sources
                self.counters.env_steps += steps
                self._note(loss=float(loss.detach()))
            else:
                self._learn_scst(batch)

    def _learn_scst(self, batch: dict[str, np.ndarray]) -> None:
        sc, g = self.config.scst, self.group
        reward = batch["reward"].reshape(-1, g)
        adv = scst_advantages(reward[:, 1:], reward[:, 0], sc.baseline).reshape(-1)
        sample = np.ones(len(batch["row"]), bool)
        sample[0::g] = False
        sources = {k: batch[k][0::g] for k in self.family.source_schema()}  # one per group
        tokens = batch["tokens"][sample]
        length = batch["length"][sample]
        width = int(length.max())
        tokens = tokens[:, :width]
        mask = np.arange(width)[None, :] < length[:, None]
        logp, logits_t = self.family.sample_log_probs(self.net, sources, g, tokens, mask)
        mask_t = torch.from_numpy(mask)
        behaviour = torch.from_numpy(batch["log_prob"][sample][:, :width])
        stale = batch["version"][sample] != self.counters.version
        loss = scst_loss(
            logp, mask_t, torch.from_numpy(adv).float(),
            behaviour if stale.any() else None, sc.rho_bar,
        )  # fmt: skip
        total = loss
        entropy = masked_entropy(logits_t, mask_t) if sc.entropy_cost else None
        if entropy is not None:
            total = total - sc.entropy_cost * entropy
        if sc.xe_mix:
            xe = self.family.reference_loss(self.net, sources, batch["row"][0::g], self.rng)
            total = total + sc.xe_mix * xe
            self._note(xe_loss=float(xe.detach()))
        self._step(total)
        self.counters.sources += len(batch["row"]) // g
        self._note(
            loss=float(loss.detach()),
            reward_sample=float(reward[:, 1:].mean()),
            reward_greedy=float(reward[:, 0].mean()),
            advantage_abs=float(np.abs(adv).mean()),
            zero_advantage=float((adv == 0).mean()),
            stale_fraction=float(stale.mean()),
        )
        if entropy is not None:
            self._note(entropy=float(entropy.detach()))

    # ---- shell hooks -------------------------------------------------------------------------
    def before_serving(self, notice: Callable[[str], None]) -> None:
        return None

    def _measure_dev(self) -> None:
        if (
            not self.config.scst.dev_words
            or time.monotonic() - self._last_dev < self.config.scst.dev_interval_s
        ):
            return
        with self.lock:
            was_training = self.net.training
            self.net.eval()
            self._dev = self.family.dev_rates(self.net, self.config.scst.dev_words)
            self.net.train(was_training)
        self._last_dev = time.monotonic()

    def report(self) -> dict[str, Any]:
        self._measure_dev()
        now = time.monotonic()
        metrics: dict[str, float] = {
            f"seq/{k}": float(np.mean(v)) for k, v in self._stats.items() if k != "loss"
        }
        if "loss" in self._stats:
            metrics["learner/loss"] = float(np.mean(self._stats["loss"]))
        self._stats = {}
        with self.lock:
            metrics["seq/decoded_per_s"] = self._decoded_since / max(now - self._since, 1e-9)
            metrics["seq/discarded_groups"] = float(self.counters.discarded)
            metrics["seq/sources"] = float(self.counters.sources)
            self._decoded_since, self._since = 0, now
        progress: dict[str, Any] = {}
        if self._dev:
            metrics.update({f"seq/dev_{k}": float(v) for k, v in self._dev.items()})
            progress = self.family.progress(self._dev)
        mean_lag, _ = self.lag.take()
        return {
            "metrics": metrics,
            "progress": progress,
            "notice": None,
            "rejected": 0,
            "version_lag": mean_lag,
        }

    def state(self) -> dict[str, Any]:
        return {"dev": self._dev}

    def load_state(self, state: dict[str, Any], folder: Path) -> None:
        self._dev = dict(state.get("dev", {}))

    def snapshot(self) -> Callable[[Path], None]:
        """Each checkpoint keeps the split it was trained and is tested on: the snapshot folder
        (``checkpoints/ckpt-N/replay/``) holds ``{train,dev,test}.txt`` and ``split.json``."""
        return lambda folder: self.family.write_split(Path(folder))
