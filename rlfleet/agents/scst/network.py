"""The SCST agent's network: :class:`~rlfleet.models.seq2seq.Seq2Seq` sized by the task's
vocabularies, and the step-by-step decoder the actors and the evaluator act with."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rlfleet.envs.sequences import SeqOptions, SeqTask, load_task
from rlfleet.envs.sequences.env import ObsLayout
from rlfleet.envs.spec import EnvSpec
from rlfleet.models.seq2seq import DecoderState, Encoded, Seq2Seq

PAD = 0


def task_of(config: Any) -> SeqTask:
    """The run's sequence task (cached per process)."""
    return load_task(SeqOptions.parse(config.env.kwargs))


def build_network(config: Any, env: EnvSpec | None = None) -> Seq2Seq:
    task = task_of(config)
    m = config.model
    return Seq2Seq(task.src_vocab_size, task.tgt_vocab_size, m.embed, m.hidden, m.layers, m.dropout)


def source_lengths(src: np.ndarray) -> np.ndarray:
    """Lengths of padded source rows (tokens are never 0 inside a source)."""
    return (src != PAD).sum(axis=1)


class StepDecoder:
    """Acts on a sequence environment's observations one token at a time: rows at ``t == 0``
    are (re-)encoded, then one decoder step runs for every row. Greedy where ``sample`` is
    False, sampled elsewhere; returns the tokens and their log-probabilities."""

    def __init__(self, net: Seq2Seq, layout: ObsLayout, seed: int) -> None:
        self.net, self.layout = net, layout
        self.generator = torch.Generator().manual_seed(seed)
        self.enc: Encoded | None = None
        self.state: DecoderState | None = None

    def reset(self) -> None:
        self.enc = self.state = None

    # the observation's fields, as the sequence agent reads them (family.Decoder)
    def t(self, obs: np.ndarray) -> np.ndarray:
        return self.layout.t(obs)

    def ended(self, obs: np.ndarray) -> np.ndarray:
        return self.layout.ended(obs)

    def row(self, obs: np.ndarray) -> np.ndarray:
        return self.layout.row(obs)

    def sources(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        return {"src": self.layout.source(obs).astype(np.int32)}

    @torch.inference_mode()
    def act(
        self, obs: np.ndarray, sample: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        lay = self.layout
        fresh = lay.t(obs) == 0
        if fresh.any():
            src = lay.source(obs)[fresh]
            enc, state = self.net.encode(
                torch.from_numpy(src), torch.from_numpy(source_lengths(src))
            )
            if self.enc is None or fresh.all():
                self.enc, self.state = enc, state
            else:  # some rows start a new episode while the others go on
                rows = torch.from_numpy(np.flatnonzero(fresh))
                for name in ("memory", "keys", "mask"):
                    getattr(self.enc, name)[rows] = getattr(enc, name)
                for name in ("h", "c", "feed"):
                    getattr(self.state, name)[rows] = getattr(state, name)
        prev = torch.from_numpy(lay.prev(obs).copy())
        logits, self.state = self.net.step(self.enc, self.state, prev)
        logp = torch.log_softmax(logits, dim=1)
        choice = logp.argmax(dim=1)
        if sample is not None and sample.any():
            drawn = torch.multinomial(logp.exp(), 1, generator=self.generator).squeeze(1)
            choice = torch.where(torch.from_numpy(sample), drawn, choice)
        chosen = logp.gather(1, choice.unsqueeze(1)).squeeze(1)
        return choice.numpy(), chosen.numpy().astype(np.float32)
