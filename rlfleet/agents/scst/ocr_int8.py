"""Named post-training int8 settings of the OCR recognizer and their calibration images.

Each setting is a :func:`rlfleet.models.int8.quantize` option set plus the calibration sample
(count and render stream of train-word, train-font images). ``eval-ocr`` and ``bench ocr``
report :data:`DEFAULT_INT8` as the int8 row and keep the recipe's rows for comparison;
``bench ocr-int8-accuracy`` compares any of them (docs/ocr.md, "Accuracy drop").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from rlfleet.envs.ocr.task import OcrTask
from rlfleet.errors import ConfigError
from rlfleet.models.int8 import quantize
from rlfleet.models.int8_adjust import equalization_available
from rlfleet.models.ocr import CtcRecognizer

__all__ = [
    "CALIBRATION_STREAM",
    "DEFAULT_INT8",
    "INT8_SETTINGS",
    "RECIPE_ROWS",
    "Int8Setting",
    "calibration_images",
    "quantize_setting",
]

#: Render stream of int8 calibration images (train words and fonts, never the test set).
CALIBRATION_STREAM = 0xCA1B


@dataclass(frozen=True)
class Int8Setting:
    """One post-training int8 recipe: :func:`rlfleet.models.int8.quantize` options and the
    calibration images (count, render stream)."""

    observer: str = "histogram"
    per_channel_weights: bool = False
    float_head: bool = False
    equalize: bool = False
    bias_correction: bool = False
    calibration: int = 256
    stream: int = CALIBRATION_STREAM


_CHANNEL = {"per_channel_weights": True}
#: Named int8 settings: the recipe (per-tensor, histogram/min-max) and the post-training
#: remedies compared in docs/ocr.md, one at a time and a few combined (``stream1``/``stream2``:
#: other calibration samples, to see the calibration's own noise).
INT8_SETTINGS: dict[str, Int8Setting] = {
    "histogram": Int8Setting(),
    "minmax": Int8Setting(observer="minmax"),
    "histogram_channel": Int8Setting(**_CHANNEL),
    "minmax_channel": Int8Setting(observer="minmax", **_CHANNEL),
    "histogram_fp32head": Int8Setting(float_head=True),
    "histogram_channel_fp32head": Int8Setting(float_head=True, **_CHANNEL),
    "minmax_fp32head": Int8Setting(observer="minmax", float_head=True),
    "histogram_fp32head_equalize": Int8Setting(float_head=True, equalize=True),
    "histogram_calib1024": Int8Setting(calibration=1024),
    "histogram_channel_calib1024": Int8Setting(calibration=1024, **_CHANNEL),
    "histogram_channel_stream1": Int8Setting(stream=CALIBRATION_STREAM + 1, **_CHANNEL),
    "histogram_channel_stream2": Int8Setting(stream=CALIBRATION_STREAM + 2, **_CHANNEL),
    "histogram_equalize": Int8Setting(equalize=True),
    "histogram_biascorr": Int8Setting(bias_correction=True),
    "histogram_equalize_biascorr": Int8Setting(equalize=True, bias_correction=True),
    "histogram_channel_equalize": Int8Setting(equalize=True, **_CHANNEL),
    "histogram_channel_biascorr": Int8Setting(bias_correction=True, **_CHANNEL),
}


def quantize_setting(net: CtcRecognizer, task: OcrTask, name: str) -> torch.nn.Module:
    """An int8 copy of ``net`` made with the named setting of :data:`INT8_SETTINGS`."""
    if name not in INT8_SETTINGS:
        raise ConfigError(f"int8 setting {name!r} is unknown; valid: {', '.join(INT8_SETTINGS)}")
    s = INT8_SETTINGS[name]
    options = {k: v for k, v in asdict(s).items() if k not in ("calibration", "stream")}
    return quantize(net, calibration_images(task, s.calibration, stream=s.stream), **options)


#: The int8 row of ``eval-ocr`` and ``bench ocr``: the recipe with the classifier (last layer)
#: kept fp32 as well as the first conv, and cross-layer equalization of each block's depthwise /
#: pointwise pair (docs/ocr.md "Accuracy drop": no measurable loss on the 4 trained models,
#: the recipe alone lost 0.5 points); without torch's equalization, the fp32 head alone.
DEFAULT_INT8 = "histogram_fp32head_equalize" if equalization_available() else "histogram_fp32head"
#: Rows reported next to it for comparison: the recipe (per-tensor) and per-channel weights.
RECIPE_ROWS = ("histogram", "minmax", "histogram_channel")


def calibration_images(
    task: OcrTask, count: int = 256, batch: int = 64, stream: int = CALIBRATION_STREAM
) -> list[torch.Tensor]:
    """Batches of train-word images (train fonts) for int8 calibration: uniform train words,
    rendered like the test images (same styles, zero-padded to the full width)."""
    rng = np.random.default_rng(stream)
    rows = rng.integers(0, len(task.train_words), count)
    images, _ = task.train_images(rows, stream, np.arange(count))
    return [torch.from_numpy(images[i : i + batch]).unsqueeze(1) for i in range(0, count, batch)]
