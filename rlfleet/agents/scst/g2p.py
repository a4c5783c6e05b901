"""The encoder-decoder family of the sequence agent (``Seq/G2P-v0``): a BiLSTM + attention
:class:`~rlfleet.models.seq2seq.Seq2Seq` decoded token by token, trained by teacher-forced
cross-entropy (XE) and by SCST on its sampled outputs (:mod:`rlfleet.agents.scst.family`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rlfleet.agents.scst.network import StepDecoder, build_network, source_lengths, task_of
from rlfleet.envs.sequences import SeqOptions, error_rates
from rlfleet.envs.sequences.corpus import BOS, EOS, Corpus
from rlfleet.envs.sequences.env import ObsLayout
from rlfleet.errors import ConfigError
from rlfleet.models.decoding import decode
from rlfleet.models.seq2seq import Seq2Seq

__all__ = [
    "G2PFamily",
    "greedy_error_rates",
    "make_family",
    "references",
    "strip_eos",
    "teacher_batch",
    "xe_loss",
]

#: env.kwargs that shape the vocabularies and the split: an init_from run must share them.
DATA_KEYS = (
    "corpus",
    "stress",
    "source_tokens",
    "src_vocab",
    "tgt_vocab",
    "max_words",
    "split_seed",
    "dev_fraction",
    "test_fraction",
    "max_output_len",
)


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


def strip_eos(tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Output lengths without the final EOS (when there is one)."""
    last = tokens[np.arange(len(lengths)), np.maximum(lengths - 1, 0)]
    return lengths - (last == EOS)


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


class G2PFamily:
    """Seq2Seq on a parallel corpus (module docstring; :class:`SequenceFamily`)."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.task = task_of(config)
        self.max_output_len = self.task.max_output_len
        self.vocab_size = self.task.tgt_vocab_size
        self.num_train = len(self.task.train)

    def build_network(self) -> Seq2Seq:
        return build_network(self.config)

    def source_schema(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        return {"src": ("int32", (self.task.max_source_len,))}

    def decoder(self, net: Seq2Seq, seed: int, group: int = 1) -> StepDecoder:
        return StepDecoder(net, ObsLayout(self.task.max_source_len), seed)

    def supervised_batch(self, rng: np.random.Generator, size: int) -> dict[str, torch.Tensor]:
        train = self.task.train
        rows = rng.integers(0, len(train), size)
        refs, ref_len = references(train, rows, rng)
        return teacher_batch(train.src[rows], refs, ref_len)

    def supervised_loss(
        self, net: Seq2Seq, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, int, int]:
        # XE has no environment: its "env steps" are the decoder steps it was taught
        return xe_loss(net, batch), int(batch["src"].shape[0]), int((batch["tgt_out"] > 0).sum())

    def sample_log_probs(
        self,
        net: Seq2Seq,
        sources: dict[str, np.ndarray],
        group: int,
        tokens: np.ndarray,
        mask: np.ndarray,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        src = sources["src"].astype(np.int64)
        tokens = tokens.astype(np.int64)
        width = tokens.shape[1]
        tgt_in = np.concatenate([np.full((len(tokens), 1), BOS, np.int64), tokens[:, :-1]], axis=1)
        tgt_in = np.where(mask, tgt_in, 0)
        enc, state = net.encode(torch.from_numpy(src), torch.from_numpy(source_lengths(src)))
        index = torch.arange(src.shape[0]).repeat_interleave(group - 1)
        enc, state = enc.select(index), state.select(index)
        logits = []
        tin = torch.from_numpy(tgt_in)
        for t in range(width):
            step_logits, state = net.step(enc, state, tin[:, t])
            logits.append(step_logits)
        logits_t = torch.stack(logits, dim=1)
        logp_all = torch.log_softmax(logits_t, dim=-1)
        logp = logp_all.gather(2, torch.from_numpy(tokens).unsqueeze(2)).squeeze(2)
        return logp, logits_t

    def reference_loss(
        self,
        net: Seq2Seq,
        sources: dict[str, np.ndarray],
        rows: np.ndarray,
        rng: np.random.Generator,
    ) -> torch.Tensor:
        refs, ref_len = references(self.task.train, rows, rng)
        return xe_loss(net, teacher_batch(self.task.train.src[rows], refs, ref_len))

    def dev_rates(self, net: Seq2Seq, count: int) -> dict[str, float]:
        rows = np.arange(min(count, len(self.task.dev)))
        if not rows.size:
            return {}
        return greedy_error_rates(net, self.task.dev, rows, self.task.max_output_len)

    def progress(self, rates: dict[str, float]) -> dict[str, float]:
        # the progress line formats numbers only: percentages, rounded there
        return {"dev PER %": 100 * rates["per"], "WER %": 100 * rates["wer"]}

    def write_split(self, folder: Path) -> None:
        self.task.write_split(folder)

    def check_init_from(self, config: Any, saved: dict[str, Any], folder: Path) -> None:
        theirs_env = saved.get("env", {}).get("kwargs", {})
        ours = SeqOptions.parse(config.env.kwargs).__dict__
        theirs = SeqOptions.parse(
            {k: v for k, v in theirs_env.items() if k != "group_size"}
        ).__dict__
        differ = [k for k in DATA_KEYS if ours[k] != theirs[k]]
        if saved.get("run", {}).get("algorithm") != "scst" or differ:
            raise ConfigError(
                f"scst.init_from {str(folder)!r} is not an scst run on the same data "
                f"(env.kwargs differing: {', '.join(differ) or 'none'}; algorithm "
                f"{saved.get('run', {}).get('algorithm')!r})"
            )
        model = saved.get("model", {})
        mine = {k: getattr(config.model, k) for k in ("embed", "hidden", "layers")}
        if any(model.get(k) != v for k, v in mine.items()):
            raise ConfigError(
                f"scst.init_from {str(folder)!r} has model {model}; this run's is {mine}"
            )


def make_family(config: Any) -> G2PFamily:
    return G2PFamily(config)
