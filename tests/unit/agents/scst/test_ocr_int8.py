"""Named OCR int8 settings: each maps to the quantize options it names (the default row keeps
the classifier fp32), calibration samples follow their stream, unknown names are refused with
the valid ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlfleet.agents.scst.ocr_int8 import (
    DEFAULT_INT8,
    INT8_SETTINGS,
    RECIPE_ROWS,
    calibration_images,
    quantize_setting,
)
from rlfleet.envs.ocr.task import OcrOptions, OcrTask
from rlfleet.errors import ConfigError
from rlfleet.models.int8 import available_engines
from rlfleet.models.ocr import CtcRecognizer

pytestmark = [
    pytest.mark.unit,
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.skipif(not available_engines(), reason="torch build without quantized engines"),
]

WORDS = ["cat", "cab", "bat", "tab", "act", "tack", "back", "abba", "bab", "tat"]


@pytest.fixture
def task(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("\n".join(WORDS) + "\n")
    return OcrTask(OcrOptions(words=str(path), width_factor=4, test_images=4))


def test_default_and_recipe_rows_are_named_settings():
    assert DEFAULT_INT8 in INT8_SETTINGS and set(RECIPE_ROWS) <= set(INT8_SETTINGS)
    assert INT8_SETTINGS[DEFAULT_INT8].float_head  # the default keeps the classifier fp32
    recipe = INT8_SETTINGS["histogram"]
    assert not (recipe.float_head or recipe.equalize or recipe.per_channel_weights)


def test_calibration_images_follow_their_stream(task):
    a = calibration_images(task, 8, batch=4)
    b = calibration_images(task, 8, batch=4)
    c = calibration_images(
        task, 8, batch=4, stream=INT8_SETTINGS["histogram_channel_stream1"].stream
    )
    assert [x.shape for x in a] == [(4, 1, 32, 128)] * 2
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(torch.cat(a), torch.cat(c))


def test_settings_change_what_is_quantized(task):
    torch.manual_seed(0)
    net = CtcRecognizer(task.num_classes).eval()
    recipe = quantize_setting(net, task, "histogram")
    default = quantize_setting(net, task, DEFAULT_INT8)
    assert type(recipe.classifier).__module__.startswith("torch.ao.nn.quantized")
    assert type(default.classifier) is torch.nn.Conv2d
    images, widths, _ = task.test_set
    x = torch.from_numpy(images).unsqueeze(1)
    with torch.inference_mode():
        assert np.isfinite(default(x).numpy()).all()
    with pytest.raises(ConfigError, match="valid: histogram, minmax"):
        quantize_setting(net, task, "fp16")
