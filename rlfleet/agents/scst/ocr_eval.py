"""Evaluation of an OCR run's checkpoint (``rlfleet eval-ocr RUN``): CER and word accuracy on
the held-out test set (held-out words in held-out fonts) with greedy and prefix-beam CTC
decoding, in fp32 and int8 (the default int8 setting, and the recipe's per-tensor histogram-L2
and min/max calibrations and per-channel weights for comparison), and a PNG grid of examples."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlfleet.agents.common.checkpoint import latest_checkpoint, load_weights, resolve_checkpoint
from rlfleet.agents.scst.ocr import build_recognizer, recognize, task_of
from rlfleet.agents.scst.ocr_int8 import (
    DEFAULT_INT8,
    RECIPE_ROWS,
    calibration_images,
    quantize_setting,
)
from rlfleet.envs.ocr.task import OcrTask
from rlfleet.errors import CheckpointError, ConfigError
from rlfleet.math.ctc import beam_decode
from rlfleet.models.ocr import CtcRecognizer

__all__ = ["calibration_images", "evaluate_ocr", "example_grid", "load_recognizer"]


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
    int8_setting: str = DEFAULT_INT8,
) -> dict[str, Any]:
    """CER / word accuracy of greedy (fp32, and int8) and beam decoding on the first ``images``
    test images (0 = all), with the seconds each took. The ``int8`` row is ``int8_setting``
    (:data:`rlfleet.agents.scst.ocr_int8.INT8_SETTINGS`); the recipe's per-tensor rows
    (``int8_histogram``, ``int8_minmax``) and per-channel ``int8_histogram_channel`` follow."""
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
        rows_int8 = {"int8": int8_setting, **{f"int8_{s}": s for s in RECIPE_ROWS}}
        for label, setting in rows_int8.items():
            qnet = quantize_setting(net, task, setting)
            start = time.perf_counter()
            hyp_q, len_q = recognize(qnet, test_images, widths, task)
            out[label] = {
                **_rates(task, hyp_q, len_q, rows),
                "seconds": time.perf_counter() - start,
                "engine": torch.backends.quantized.engine,
                "setting": setting,
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
