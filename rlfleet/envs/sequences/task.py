"""A sequence task: its options (the environment's ``kwargs``), its data split, and scoring.

Every role builds the same task from the same options: the corpus is read, the split drawn from
``split_seed``, so actors, the learner and the evaluator agree on train / dev / test without
sending data around. The task is cached per process (threads of an in-process run share it).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlfleet.envs.options import checked_kwargs
from rlfleet.envs.sequences.cache import cmudict_key, load_cached, store
from rlfleet.envs.sequences.corpus import (
    SOURCE_SPECIALS,
    TARGET_SPECIALS,
    Corpus,
    build_corpus,
    load_cmudict,
    load_tsv,
    read_vocab,
    split_indices,
)
from rlfleet.errors import ConfigError
from rlfleet.math.edit_distance import min_edit_distance

__all__ = ["METRICS", "SeqOptions", "SeqTask", "error_rates", "load_task", "score"]

#: Rewards on a whole output: negative normalised edit distance to the closest reference
#: (divided by the longer of output and that reference: in [-1, 0]),
#: exact match with any reference, sentence BLEU (sacrebleu).
METRICS = ("neg_ned", "exact", "bleu")


@dataclass(frozen=True)
class SeqOptions:
    """What ``env.kwargs`` of a sequence environment may hold."""

    corpus: str = "cmudict"  # "cmudict" or a two-column TSV path
    stress: bool = False  # CMUdict: keep stress digits on vowels
    source_tokens: str = "chars"  # TSV: "chars" or "space"
    src_vocab: str = ""  # optional vocabulary files (one token per line)
    tgt_vocab: str = ""
    max_words: int = 0  # keep this many sources (a seeded subset; 0 = all), for tiny runs
    dev_fraction: float = 0.05
    test_fraction: float = 0.05
    split_seed: int = 0
    max_output_len: int = 0  # tokens including EOS (0 = longest reference + 1)
    reward: str = "neg_ned"
    group_size: int = 1  # training episodes per source decoded side by side (1 greedy + k samples)

    @classmethod
    def parse(cls, kwargs: dict[str, Any] | None) -> SeqOptions:
        """Options from ``env.kwargs``; ConfigError naming unknown keys and bad values."""
        opts = cls(**checked_kwargs(cls, kwargs, "a sequence task"))
        if opts.reward not in METRICS:
            raise ConfigError(
                f"env.kwargs.reward {opts.reward!r} is unknown; valid: {', '.join(METRICS)}"
            )
        if opts.reward == "bleu":
            try:
                import sacrebleu  # noqa: F401
            except ImportError as exc:
                raise ConfigError("reward 'bleu' needs sacrebleu: pip install sacrebleu") from exc
        if opts.group_size < 1 or opts.max_words < 0 or opts.max_output_len < 0:
            raise ConfigError(
                "env.kwargs group_size must be >= 1 and max_words, max_output_len >= 0; got "
                f"{opts.group_size}, {opts.max_words}, {opts.max_output_len}"
            )
        for name in ("dev_fraction", "test_fraction"):
            if not 0 <= getattr(opts, name) < 1:
                raise ConfigError(f"env.kwargs.{name} must be in [0, 1), got {getattr(opts, name)}")
        return opts


@dataclass
class SeqTask:
    """The corpus split three ways, and the decoding length cap."""

    options: SeqOptions
    corpus: Corpus
    train: Corpus
    dev: Corpus
    test: Corpus
    max_output_len: int  # including EOS

    @property
    def src_vocab_size(self) -> int:
        return self.corpus.src_vocab.size

    @property
    def tgt_vocab_size(self) -> int:
        return self.corpus.tgt_vocab.size

    @property
    def max_source_len(self) -> int:
        return int(self.corpus.src.shape[1])

    def part(self, name: str) -> Corpus:
        if name not in ("train", "dev", "test"):
            raise ConfigError(f"split {name!r} is unknown; valid: train, dev, test")
        return getattr(self, name)

    def write_split(self, folder: str | Path) -> None:
        """``folder/{train,dev,test}.txt``: the sources of each part, one per line, and
        ``folder/split.json`` (the options and the sizes) -- what a run trained and tested on."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        for name in ("train", "dev", "test"):
            (out / f"{name}.txt").write_text("\n".join(self.part(name).keys) + "\n", "utf-8")
        meta = {
            "options": self.options.__dict__,
            "sizes": {n: len(self.part(n)) for n in ("train", "dev", "test")},
            "max_output_len": self.max_output_len,
        }
        (out / "split.json").write_text(json.dumps(meta, indent=1), "utf-8")


def _describe(corpus: Corpus, ref: int, opts: SeqOptions) -> str:
    word = corpus.keys[int(corpus.ref_owner[ref])]
    line = int(corpus.ref_line[ref])
    return f"line {line} ({word!r})" if line else f"{word!r}"


@functools.lru_cache(maxsize=4)
def load_task(opts: SeqOptions) -> SeqTask:
    """Read the corpus, check the length cap, draw the split (cached per options)."""
    src_vocab = read_vocab(opts.src_vocab, SOURCE_SPECIALS) if opts.src_vocab else None
    tgt_vocab = read_vocab(opts.tgt_vocab, TARGET_SPECIALS) if opts.tgt_vocab else None
    if opts.corpus == "cmudict" and src_vocab is None and tgt_vocab is None:
        key = cmudict_key(opts.stress)
        corpus = load_cached(key)
        if corpus is None:
            corpus = build_corpus(load_cmudict(opts.stress), what="CMUdict")
            store(key, corpus)
    elif opts.corpus == "cmudict":
        corpus = build_corpus(load_cmudict(opts.stress), src_vocab, tgt_vocab, "CMUdict")
    else:
        pairs = load_tsv(opts.corpus, opts.source_tokens)
        corpus = build_corpus(pairs, src_vocab, tgt_vocab, opts.corpus)
    if opts.max_words and opts.max_words < len(corpus):
        rng = np.random.default_rng(np.random.SeedSequence([opts.split_seed, 0x3A7]))
        corpus = corpus.subset(np.sort(rng.choice(len(corpus), opts.max_words, replace=False)))
    longest = int(np.argmax(corpus.ref_len))
    need = int(corpus.ref_len[longest]) + 1
    cap = opts.max_output_len or need
    if cap < need:
        raise ConfigError(
            f"env.kwargs.max_output_len {cap} is below the longest reference: "
            f"{_describe(corpus, longest, opts)} has {need - 1} tokens + end-of-sequence = {need}"
        )
    train, dev, test = split_indices(
        len(corpus), opts.dev_fraction, opts.test_fraction, opts.split_seed
    )
    return SeqTask(opts, corpus, corpus.subset(train), corpus.subset(dev), corpus.subset(test), cap)


def closest(
    corpus: Corpus, rows: np.ndarray, hyp: np.ndarray, hyp_len: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Edit distance of each hypothesis (``hyp [B, T]`` target ids without EOS, for sources
    ``rows [B]``) to its closest reference, and that reference's length."""
    rows = np.asarray(rows, np.int64)
    # references of the requested rows, owners renumbered to batch positions
    counts = np.bincount(corpus.ref_owner, minlength=len(corpus))
    pick_owner = np.repeat(np.arange(rows.size), counts[rows])
    order = np.argsort(corpus.ref_owner, kind="stable")
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    offsets = np.arange(pick_owner.size) - np.repeat(
        np.cumsum(counts[rows]) - counts[rows], counts[rows]
    )
    refs = order[starts[rows][pick_owner] + offsets]
    return min_edit_distance(hyp, hyp_len, corpus.refs[refs], corpus.ref_len[refs], pick_owner)


def score(
    corpus: Corpus, rows: np.ndarray, hyp: np.ndarray, hyp_len: np.ndarray, metric: str
) -> np.ndarray:
    """Reward of each whole output (float32 ``[B]``) by ``metric`` (:data:`METRICS`)."""
    if metric == "bleu":
        import sacrebleu

        out = np.empty(len(rows), np.float32)
        vocab = corpus.tgt_vocab
        for i, row in enumerate(rows):  # sacrebleu scores one sentence at a time
            refs = [" ".join(r) for r in corpus.refs_of(int(row))]
            text = " ".join(vocab.decode(hyp[i], int(hyp_len[i])))
            out[i] = sacrebleu.sentence_bleu(text, refs).score / 100.0
        return out
    dist, ref_len = closest(corpus, rows, hyp, hyp_len)
    if metric == "exact":
        return (dist == 0).astype(np.float32)
    if metric == "neg_ned":
        # normalised by the longer of output and reference, so the reward stays in [-1, 0]:
        # normalising by the reference alone punishes a run-on output up to -cap/len while an
        # empty one costs only -1, and SCST then learns to stop early (measured: it collapsed
        # to one- and two-phoneme outputs, dev PER 19% -> 63%)
        return (-dist / np.maximum(np.maximum(ref_len, hyp_len), 1)).astype(np.float32)
    raise ConfigError(f"metric {metric!r} is unknown; valid: {', '.join(METRICS)}")


def error_rates(
    corpus: Corpus, rows: np.ndarray, hyp: np.ndarray, hyp_len: np.ndarray
) -> dict[str, float]:
    """Corpus-level PER (edits to the closest reference / that reference's tokens, summed) and
    WER (share of sources whose output matches no reference)."""
    dist, ref_len = closest(corpus, rows, hyp, hyp_len)
    return {
        "per": float(dist.sum() / max(int(ref_len.sum()), 1)),
        "wer": float((dist > 0).mean()) if dist.size else 0.0,
    }
