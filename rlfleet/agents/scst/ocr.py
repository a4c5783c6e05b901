"""The CTC recognizer family of the sequence agent (``OCR/Words-v0``): a fully-convolutional
:class:`~rlfleet.models.ocr.CtcRecognizer` reads a word image once; an episode then writes one
CTC class per output column (the actor samples each column from the recognizer's per-column
distribution, or takes its argmax for the greedy decode), and the collapsed string is rewarded by
minus its CER. Supervised training is the CTC loss on rendered train words; SCST's
log-probability of a sampled path is the sum of its columns' log-probabilities (columns are
conditionally independent given the image in CTC), computed in one forward pass.

BatchNorm runs with its running statistics whenever SCST scores paths (the actors decode in eval
mode, and the importance weights compare like with like); the CTC phase trains it normally.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rlfleet.agents.scst.tasks import check_ocr_height
from rlfleet.envs.ocr.env import OcrLayout
from rlfleet.envs.ocr.task import OcrOptions, OcrTask, load_task
from rlfleet.errors import ConfigError
from rlfleet.math.ctc import greedy_decode
from rlfleet.models.ocr import CtcRecognizer

__all__ = ["CtcDecoder", "OcrFamily", "ctc_loss", "greedy_rates", "make_family", "recognize"]

#: env.kwargs that shape the data: an init_from run must share them.
DATA_KEYS = (
    "words",
    "min_len",
    "max_len",
    "max_words",
    "held_out_fraction",
    "split_seed",
    "height",
)
#: Offset of the learner's render stream from its seed (actors render from theirs).
LEARNER_STREAM = 1_000_003


def task_of(config: Any) -> OcrTask:
    return load_task(OcrOptions.parse(config.env.kwargs))


def build_recognizer(config: Any, task: OcrTask) -> CtcRecognizer:
    """The run's recognizer; ConfigError when its input height is not the task's."""
    check_ocr_height(config.recognizer.phi, task.height)
    return CtcRecognizer(task.num_classes, config.recognizer.phi)


def ctc_loss(
    log_probs: torch.Tensor, columns: torch.Tensor, labels: torch.Tensor, label_len: torch.Tensor
) -> torch.Tensor:
    """Mean CTC loss per word (``log_probs [B, T, C]``); impossible alignments count zero."""
    return F.ctc_loss(
        log_probs.transpose(0, 1), labels, columns, label_len, reduction="mean", zero_infinity=True
    )


@torch.inference_mode()
def recognize(
    net: torch.nn.Module, images: np.ndarray, widths: np.ndarray, task: OcrTask, batch: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy decodes (labels, lengths) of ``images [N, H, W]`` uint8, in batches."""
    labels, lengths = [], []
    for start in range(0, len(images), batch):
        logp = net(torch.from_numpy(images[start : start + batch]).unsqueeze(1)).numpy()
        out, n = greedy_decode(logp, task.columns(widths[start : start + batch]))
        labels.append(out)
        lengths.append(n)
    return np.concatenate(labels), np.concatenate(lengths)


def greedy_rates(net: torch.nn.Module, task: OcrTask, count: int) -> dict[str, float]:
    """CER and word accuracy of greedy decodes of the first ``count`` held-out test images."""
    images, widths, rows = task.test_set
    n = min(count, len(rows))
    hyp, hyp_len = recognize(net, images[:n], widths[:n], task)
    dist, ref_len, exact = task.score_labels(hyp, hyp_len, rows[:n], test=True)
    return {"cer": float(dist.sum() / max(ref_len.sum(), 1)), "word_acc": float(exact.mean())}


class CtcDecoder:
    """Per-column acting on OCR observations: the recognizer runs once per new image (once per
    group of ``group`` rows sharing it), then each step picks column ``t`` of every row."""

    def __init__(self, net: CtcRecognizer, layout: OcrLayout, seed: int, group: int = 1) -> None:
        self.net, self.layout, self.group = net, layout, max(1, group)
        self.generator = torch.Generator().manual_seed(seed)
        self.logp: torch.Tensor | None = None  # [K, T, C] of the current images

    def reset(self) -> None:
        self.logp = None

    def t(self, obs: np.ndarray) -> np.ndarray:
        return self.layout.t(obs)

    def ended(self, obs: np.ndarray) -> np.ndarray:
        return self.layout.ended(obs)

    def row(self, obs: np.ndarray) -> np.ndarray:
        return self.layout.row(obs)

    def sources(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        lay = self.layout
        return {"image": obs[:, : lay.pixels].astype(np.uint8), "width": lay.image_width(obs)}

    @torch.inference_mode()
    def act(
        self, obs: np.ndarray, sample: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        lay = self.layout
        t = lay.t(obs)
        fresh = t == 0
        if fresh.any():
            images = lay.images(obs)
            g = self.group
            if fresh.all():
                if len(obs) % g == 0:  # lockstep groups share one image: run it once
                    logp = self.net(torch.from_numpy(images[::g]).unsqueeze(1))
                    self.logp = logp.repeat_interleave(g, dim=0)
                else:
                    self.logp = self.net(torch.from_numpy(images).unsqueeze(1))
            else:  # some rows start a new image while the others go on
                logp = self.net(torch.from_numpy(images[fresh]).unsqueeze(1))
                if self.logp is None:
                    self.logp = torch.zeros(len(obs), *logp.shape[1:])
                self.logp[torch.from_numpy(np.flatnonzero(fresh))] = logp
        col = torch.from_numpy(np.minimum(t, self.logp.shape[1] - 1).astype(np.int64))
        step = self.logp[torch.arange(len(obs)), col]  # [K, C]
        choice = step.argmax(dim=1)
        if sample is not None and sample.any():
            drawn = torch.multinomial(step.exp(), 1, generator=self.generator).squeeze(1)
            choice = torch.where(torch.from_numpy(sample), drawn, choice)
        chosen = step.gather(1, choice.unsqueeze(1)).squeeze(1)
        return choice.numpy(), chosen.numpy().astype(np.float32)


class OcrFamily:
    """CTC recognizer on rendered words (module docstring; :class:`SequenceFamily`)."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.task = task_of(config)
        build_recognizer(config, self.task)  # the height check, before any process starts
        self.max_output_len = self.task.max_columns
        self.vocab_size = self.task.num_classes
        self.num_train = len(self.task.train_words)
        self.layout = OcrLayout(self.task.height, self.task.max_width)
        self._drawn = 0

    def build_network(self) -> CtcRecognizer:
        return build_recognizer(self.config, self.task)

    def source_schema(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        return {"image": ("uint8", (self.layout.pixels,)), "width": ("int64", ())}

    def decoder(self, net: CtcRecognizer, seed: int, group: int = 1) -> CtcDecoder:
        return CtcDecoder(net, self.layout, seed, group)

    def _labelled(self, images: np.ndarray, widths: np.ndarray, rows: np.ndarray) -> dict:
        t = self.task
        return {
            "images": torch.from_numpy(images).unsqueeze(1),
            "columns": torch.from_numpy(t.columns(widths)),
            "labels": torch.from_numpy(t.train_labels[rows]),
            "label_len": torch.from_numpy(t.train_label_len[rows]),
        }

    def supervised_batch(self, rng: np.random.Generator, size: int) -> dict[str, torch.Tensor]:
        rows = rng.integers(0, self.num_train, size)
        ids = self._drawn + np.arange(size)
        self._drawn += size
        stream = self.config.run.seed + LEARNER_STREAM
        images, widths = self.task.train_images(rows, stream, ids)
        return self._labelled(images, widths, rows)

    def supervised_loss(
        self, net: CtcRecognizer, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, int, int]:
        loss = ctc_loss(net(batch["images"]), batch["columns"], batch["labels"], batch["label_len"])
        return loss, int(batch["images"].shape[0]), int(batch["columns"].sum())

    def sample_log_probs(
        self,
        net: CtcRecognizer,
        sources: dict[str, np.ndarray],
        group: int,
        tokens: np.ndarray,
        mask: np.ndarray,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # a copy: message arrays are read-only views of the received bytes
        images = np.array(sources["image"]).reshape(-1, 1, self.layout.H, self.layout.W)
        was_training = net.training
        net.eval()  # BatchNorm on its running statistics, as the actors decoded
        try:
            logp_all = net(torch.from_numpy(images))  # [G, T, C]
        finally:
            net.train(was_training)
        logp_all = logp_all.repeat_interleave(group - 1, dim=0)[:, : tokens.shape[1]]
        tok = torch.from_numpy(tokens.astype(np.int64))
        logp = logp_all.gather(2, tok.unsqueeze(2)).squeeze(2)
        return logp, logp_all  # log-probabilities are valid logits for the entropy

    def reference_loss(
        self,
        net: CtcRecognizer,
        sources: dict[str, np.ndarray],
        rows: np.ndarray,
        rng: np.random.Generator,
    ) -> torch.Tensor:
        images = np.array(sources["image"]).reshape(-1, self.layout.H, self.layout.W)  # writable
        batch = self._labelled(images, np.array(sources["width"]), rows)
        return self.supervised_loss(net, batch)[0]

    def dev_rates(self, net: CtcRecognizer, count: int) -> dict[str, float]:
        return greedy_rates(net, self.task, count)

    def progress(self, rates: dict[str, float]) -> dict[str, float]:
        return {"test CER %": 100 * rates["cer"], "word acc %": 100 * rates["word_acc"]}

    def write_split(self, folder: Path) -> None:
        self.task.write_split(folder)

    def check_init_from(self, config: Any, saved: dict[str, Any], folder: Path) -> None:
        theirs_env = saved.get("env", {}).get("kwargs", {})
        ours = OcrOptions.parse(config.env.kwargs).__dict__
        theirs = OcrOptions.parse(
            {k: v for k, v in theirs_env.items() if k != "group_size"}
        ).__dict__
        differ = [k for k in DATA_KEYS if ours[k] != theirs[k]]
        phi = saved.get("recognizer", {}).get("phi", 0)
        if differ or phi != config.recognizer.phi:
            raise ConfigError(
                f"scst.init_from {str(folder)!r} is not an OCR run on the same data and model "
                f"(env.kwargs differing: {', '.join(differ) or 'none'}; recognizer.phi {phi} vs "
                f"{config.recognizer.phi})"
            )


def make_family(config: Any) -> OcrFamily:
    return OcrFamily(config)
