"""Evaluation of an OCR run's checkpoint (``rlfleet eval-ocr RUN``): CER and word accuracy on
the held-out test set (held-out words in held-out fonts) with greedy and prefix-beam CTC
decoding, in fp32 and int8 (histogram-L2 and min/max calibration), and a PNG grid of examples."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlfleet.agents.common.checkpoint import latest_checkpoint, load_weights, resolve_checkpoint
from rlfleet.agents.scst.ocr import build_recognizer, recognize, task_of
from rlfleet.envs.ocr.task import OcrTask
from rlfleet.errors import CheckpointError, ConfigError
from rlfleet.math.ctc import beam_decode
from rlfleet.models.int8 import OBSERVERS, quantize
from rlfleet.models.ocr import CtcRecognizer

__all__ = ["calibration_images", "evaluate_ocr", "example_grid", "load_recognizer"]

#: Render stream of int8 calibration images (train words and fonts, never the test set).
CALIBRATION_STREAM = 0xCA1B


def load_recognizer(
    run: str | Path, checkpoint: str = "latest"
) -> tuple[CtcRecognizer, Any, OcrTask, Path]:
    """The recognizer of a run (``latest``, ``best`` or a checkpoint folder) in eval mode, its
    config, task and checkpoint folder."""
    from rlfleet.agents import registry

    run = Path(run)
    if checkpoint == "latest":
        folder = latest_checkpoint(run)
        if folder is None:
            raise CheckpointError(f"{run} has no checkpoints")
    else:
        folder = resolve_checkpoint(run if checkpoint == "best" else Path(checkpoint))
    tensors, state = load_weights(folder)
    if "config" not in state:
        raise CheckpointError(f"{folder}: state.json has no config")
    config = registry.config_from_dict(state["config"])
    if config.run.algorithm != "scst" or config.env.id != "OCR/Words-v0":
        raise ConfigError(
            f"{folder} is a {config.run.algorithm!r} run on {config.env.id!r}; eval-ocr reads "
            "scst runs on OCR/Words-v0"
        )
    task = task_of(config)
    net = build_recognizer(config, task)
    net.load_state_dict(
        {k[len("online.") :]: v for k, v in tensors.items() if k.startswith("online.")}
    )
    return net.eval(), config, task, folder


def calibration_images(task: OcrTask, count: int = 256, batch: int = 64) -> list[torch.Tensor]:
    """Batches of train-word images (train fonts) for int8 calibration."""
    rng = np.random.default_rng(CALIBRATION_STREAM)
    rows = rng.integers(0, len(task.train_words), count)
    images, _ = task.train_images(rows, CALIBRATION_STREAM, np.arange(count))
    return [torch.from_numpy(images[i : i + batch]).unsqueeze(1) for i in range(0, count, batch)]


def _rates(
    task: OcrTask, hyp: np.ndarray, hyp_len: np.ndarray, rows: np.ndarray
) -> dict[str, float]:
    dist, ref_len, exact = task.score_labels(hyp, hyp_len, rows, test=True)
    return {"cer": float(dist.sum() / max(ref_len.sum(), 1)), "word_acc": float(exact.mean())}


def evaluate_ocr(
    net: CtcRecognizer,
    task: OcrTask,
    images: int = 0,
    beam: int = 4,
    int8: bool = True,
    calibration: int = 256,
) -> dict[str, Any]:
    """CER / word accuracy of greedy (fp32, and int8 per observer) and beam decoding on the
    first ``images`` test images (0 = all), with the seconds each took."""
    test_images, widths, rows = task.test_set
    n = min(images, len(rows)) if images else len(rows)
    test_images, widths, rows = test_images[:n], widths[:n], rows[:n]
    out: dict[str, Any] = {"images": n}
    start = time.perf_counter()
    hyp, hyp_len = recognize(net, test_images, widths, task)
    out["greedy"] = {**_rates(task, hyp, hyp_len, rows), "seconds": time.perf_counter() - start}
    if beam > 1:
        start = time.perf_counter()
        with torch.inference_mode():
            logp = np.concatenate(
                [
                    net(torch.from_numpy(test_images[i : i + 256]).unsqueeze(1)).numpy()
                    for i in range(0, n, 256)
                ]
            )
        hyp_b, len_b = beam_decode(logp, task.columns(widths), beam)
        out[f"beam{beam}"] = {
            **_rates(task, hyp_b, len_b, rows),
            "seconds": time.perf_counter() - start,
        }
    if int8:
        calib = calibration_images(task, calibration)
        for observer in OBSERVERS:
            qnet = quantize(net, calib, observer=observer)
            start = time.perf_counter()
            hyp_q, len_q = recognize(qnet, test_images, widths, task)
            out[f"int8_{observer}"] = {
                **_rates(task, hyp_q, len_q, rows),
                "seconds": time.perf_counter() - start,
                "engine": torch.backends.quantized.engine,
            }
    return out


def example_grid(
    net: CtcRecognizer, task: OcrTask, path: str | Path, count: int = 24, columns: int = 3
) -> Path:
    """A PNG of the first ``count`` test images, each with its word and the greedy reading
    (green when right, red when wrong)."""
    from PIL import Image, ImageDraw, ImageFont

    from rlfleet.envs.ocr.render import font_dir

    images, widths, rows = task.test_set
    count = min(count, len(rows))
    hyp, hyp_len = recognize(net, images[:count], widths[:count], task)
    h, w = task.height, task.max_width
    cell_h = h + 18
    sheet = Image.new("RGB", (columns * (w + 8), -(-count // columns) * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.truetype(str(font_dir() / "DejaVuSansMono.ttf"), 11)
    for i in range(count):
        x, y = (i % columns) * (w + 8), (i // columns) * cell_h
        sheet.paste(Image.fromarray(images[i]).convert("RGB"), (x, y))
        word = task.test_words[rows[i]]
        read = task.decode(hyp[i], int(hyp_len[i]))
        color = (0, 130, 0) if read == word else (200, 0, 0)
        draw.text((x, y + h + 2), f"{word} -> {read}", fill=color, font=font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
