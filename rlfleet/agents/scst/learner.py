"""The sequence learner core: supervised pre-training or self-critical sequence training.
Served by :class:`~rlfleet.agents.common.learner.LearnerShell` (publication, checkpoints, reports).

* **xe**: a data thread draws ``learner.batch_size`` train sources (one of their references at
  random each time) and the update is teacher-forced cross-entropy. Actors idle.
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

Dev PER/WER (greedy, ``scst.dev_words`` sources) are measured every ``scst.dev_interval_s``
and reported as ``seq/dev_per``, ``seq/dev_wer``.
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

from rlfleet.agents.common.checkpoint import load_weights, resolve_checkpoint
from rlfleet.agents.common.learner import BatchQueue, CheckpointedCounters, LagMeter
from rlfleet.agents.common.optim import make_adam
from rlfleet.agents.scst.network import build_network, source_lengths, task_of
from rlfleet.envs.sequences import error_rates
from rlfleet.envs.sequences.corpus import BOS, EOS, Corpus
from rlfleet.envs.spec import EnvSpec
from rlfleet.math.scst import masked_entropy, scst_advantages, scst_loss
from rlfleet.models.decoding import decode
from rlfleet.models.seq2seq import Seq2Seq
from rlfleet.transport.codec import Message
from rlfleet.transport.ports import Inbox

KEYS = ("src", "row", "tokens", "length", "log_prob", "reward")


class ScstCounters(CheckpointedCounters):
    def __init__(self) -> None:
        super().__init__()
        self.sources = 0  # sources trained on (XE) or groups (SCST)
        self.decoded = 0  # outputs received from actors
        self.discarded = 0  # groups older than scst.max_lag


def references(
    corpus: Corpus, rows: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One reference of each source (uniformly among its references): ids ``[B, T]`` and lengths."""
    counts = np.bincount(corpus.ref_owner, minlength=len(corpus))
    order = np.argsort(corpus.ref_owner, kind="stable")
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    pick = order[starts[rows] + (rng.random(rows.size) * counts[rows]).astype(np.int64)]
    return corpus.refs[pick], corpus.ref_len[pick]


def teacher_batch(
    src: np.ndarray, refs: np.ndarray, ref_len: np.ndarray
) -> dict[str, torch.Tensor]:
    """Tensors of a teacher-forced batch: decoder inputs ``BOS y`` and targets ``y EOS``."""
    b = refs.shape[0]
    width = int(ref_len.max()) + 1
    tgt_out = np.zeros((b, width), np.int64)
    tgt_out[:, : refs.shape[1]] = refs[:, :width]
    tgt_out[np.arange(b), ref_len] = EOS
    tgt_in = np.concatenate([np.full((b, 1), BOS, np.int64), tgt_out[:, :-1]], axis=1)
    tgt_in[tgt_in == EOS] = 0  # EOS is never an input: rows shorter than the widest are padding
    return {
        "src": torch.from_numpy(src.astype(np.int64)),
        "src_len": torch.from_numpy(source_lengths(src)),
        "tgt_in": torch.from_numpy(tgt_in),
        "tgt_out": torch.from_numpy(tgt_out),
    }


def xe_loss(net: Seq2Seq, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    logits = net(batch["src"], batch["src_len"], batch["tgt_in"])
    return F.cross_entropy(logits.flatten(0, 1), batch["tgt_out"].flatten(), ignore_index=0)


def greedy_error_rates(
    net: Seq2Seq, corpus: Corpus, rows: np.ndarray, max_len: int, batch: int = 512
) -> dict[str, float]:
    """PER / WER of greedy decodes of ``corpus`` sources ``rows``."""
    hyps, lens = [], []
    was_training = net.training
    net.eval()
    with torch.inference_mode():
        for start in range(0, rows.size, batch):
            part = rows[start : start + batch]
            src = corpus.src[part]
            out = decode(
                net,
                torch.from_numpy(src.astype(np.int64)),
                torch.from_numpy(source_lengths(src)),
                max_len,
            )
            tokens = np.zeros((part.size, max_len), np.int32)
            tokens[:, : out.tokens.shape[1]] = out.tokens.numpy()
            hyps.append(tokens)
            lens.append(strip_eos(tokens, out.lengths.numpy()))
    net.train(was_training)
    return error_rates(corpus, rows, np.concatenate(hyps), np.concatenate(lens))


def strip_eos(tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Output lengths without the final EOS (when there is one)."""
    last = tokens[np.arange(len(lengths)), np.maximum(lengths - 1, 0)]
    return lengths - (last == EOS)


class ScstLearner:
    """XE pre-training or SCST (module docstring)."""

    def __init__(self, config: Any, env: EnvSpec, seed: int) -> None:
        self.config = config
        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.task = task_of(config)
        self.net = build_network(config, env)
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
        self.dev_rows = np.arange(min(sc.dev_words, len(self.task.dev)))

    # ---- data threads ------------------------------------------------------------------------
    def loops(self, inbox: Inbox | None) -> dict[str, Callable[[], None]]:
        if self.xe:
            return {"prefetch": self.prefetch_once}
        return {"collect": lambda: self.collect_once(inbox)}

    def prefetch_once(self) -> None:
        train = self.task.train
        rows = self.rng.integers(0, len(train), self.config.learner.batch_size)
        refs, ref_len = references(train, rows, self.rng)
        self.batches.put(teacher_batch(train.src[rows], refs, ref_len))

    def collect_once(self, inbox: Inbox) -> None:
        for message in inbox.pull(timeout=0.1, max_messages=4):
            self.accept(message)
        need = self.config.learner.batch_size
        if self._pending_groups >= need:
            stacked = {k: np.concatenate([p[k] for p in self._pending]) for k in (*KEYS, "version")}
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
                loss = xe_loss(self.net, batch)
                self._step(loss)
                self.counters.sources += int(batch["src"].shape[0])
                # XE has no environment: its "env steps" are the decoder steps it was taught
                self.counters.env_steps += int((batch["tgt_out"] > 0).sum())
                self._note(loss=float(loss.detach()))
            else:
                self._learn_scst(batch)

    def _learn_scst(self, batch: dict[str, np.ndarray]) -> None:
        sc, g = self.config.scst, self.group
        reward = batch["reward"].reshape(-1, g)
        adv = scst_advantages(reward[:, 1:], reward[:, 0], sc.baseline).reshape(-1)
        sample = np.ones(len(batch["row"]), bool)
        sample[0::g] = False
        src = batch["src"][0::g].astype(np.int64)  # one source per group
        tokens = batch["tokens"][sample].astype(np.int64)
        length = batch["length"][sample]
        width = int(length.max())
        tokens = tokens[:, :width]
        tgt_in = np.concatenate([np.full((len(tokens), 1), BOS, np.int64), tokens[:, :-1]], axis=1)
        mask = np.arange(width)[None, :] < length[:, None]
        tgt_in = np.where(mask, tgt_in, 0)
        enc, state = self.net.encode(torch.from_numpy(src), torch.from_numpy(source_lengths(src)))
        index = torch.arange(src.shape[0]).repeat_interleave(g - 1)
        enc, state = enc.select(index), state.select(index)
        logits = []
        tin = torch.from_numpy(tgt_in)
        for t in range(width):
            step_logits, state = self.net.step(enc, state, tin[:, t])
            logits.append(step_logits)
        logits_t = torch.stack(logits, dim=1)
        logp_all = torch.log_softmax(logits_t, dim=-1)
        tok = torch.from_numpy(tokens)
        logp = logp_all.gather(2, tok.unsqueeze(2)).squeeze(2)
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
            rows = batch["row"][0::g]
            refs, ref_len = references(self.task.train, rows, self.rng)
            xe = xe_loss(self.net, teacher_batch(self.task.train.src[rows], refs, ref_len))
            total = total + sc.xe_mix * xe
            self._note(xe_loss=float(xe.detach()))
        self._step(total)
        self.counters.sources += src.shape[0]
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
            not self.dev_rows.size
            or time.monotonic() - self._last_dev < self.config.scst.dev_interval_s
        ):
            return
        with self.lock:
            self._dev = greedy_error_rates(
                self.net, self.task.dev, self.dev_rows, self.task.max_output_len
            )
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
            metrics["seq/dev_per"] = self._dev["per"]
            metrics["seq/dev_wer"] = self._dev["wer"]
            # the progress line formats numbers only: percentages, rounded there
            progress = {"dev PER %": 100 * self._dev["per"], "WER %": 100 * self._dev["wer"]}
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
        return lambda folder: self.task.write_split(Path(folder))
