"""int8 post-training quantization: the quantize-dequantize error bound and exact zero, the
recipe's pieces (fusion, fp32 first conv, observers), and agreement of an int8 recognizer with
its fp32 original on a fixed batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlfleet.errors import ConfigError
from rlfleet.models.int8 import OBSERVERS, available_engines, fake_quantize, pick_engine, quantize
from rlfleet.models.ocr import CtcRecognizer
from rlfleet.models.scaling import scaled_shape

pytestmark = [
    pytest.mark.unit,
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.skipif(not available_engines(), reason="torch build without quantized engines"),
]


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor")
def test_quantize_dequantize_error_is_at_most_half_a_step_and_zero_is_exact():
    x = torch.linspace(-1.3, 2.9, 1001)
    lo, hi = float(x.min()), float(x.max())
    scale = (hi - lo) / 255
    zero_point = int(round(-lo / scale))
    y = fake_quantize(x, scale, zero_point)
    assert float((y - x).abs().max()) <= scale / 2 + 1e-6
    assert float(fake_quantize(torch.zeros(5), scale, zero_point).abs().max()) == 0.0
    # a ReLU range [0, hi]: zero point 0, the whole uint8 range on positives
    relu = torch.relu(x)
    y2 = fake_quantize(relu, hi / 255, 0)
    assert float((y2 - relu).abs().max()) <= hi / 255 / 2 + 1e-6
    assert (y2[relu == 0] == 0).all()


def test_bad_engine_and_observer_name_the_valid_ones():
    with pytest.raises(ConfigError, match="valid:"):
        pick_engine("tpu")
    with pytest.raises(ConfigError, match="valid: histogram, minmax"):
        quantize(CtcRecognizer(5), [], observer="kl")
    with pytest.raises(ConfigError, match="cannot be quantized"):
        quantize(torch.nn.Linear(2, 2), [])


def _trained_like(phi: int = 0) -> CtcRecognizer:
    """A recognizer with non-trivial BN statistics (a few train-mode passes over data)."""
    torch.manual_seed(0)
    net = CtcRecognizer(12, phi)
    h = scaled_shape(phi).height
    with torch.no_grad():
        net.train()
        for _ in range(3):
            net(torch.randint(0, 256, (8, 1, h, 3 * h), dtype=torch.uint8))
    return net.eval()


@pytest.mark.parametrize(
    ("observer", "per_channel"), [(o, False) for o in OBSERVERS] + [("minmax", True)]
)
def test_int8_recognizer_agrees_with_fp32_on_a_fixed_batch(observer, per_channel):
    net = _trained_like()
    gen = torch.Generator().manual_seed(1)
    calib = [
        torch.randint(0, 256, (8, 1, 32, 96), dtype=torch.uint8, generator=gen) for _ in range(2)
    ]
    fixed = torch.randint(0, 256, (8, 1, 32, 96), dtype=torch.uint8, generator=gen)
    q = quantize(net, calib, observer=observer, per_channel_weights=per_channel)
    with torch.inference_mode():
        a, b = net.logits(fixed), q.logits(fixed)
    # stated tolerance: relative L2 error of the logits below 10 %, same shape, finite
    assert b.shape == a.shape and torch.isfinite(b).all()
    rel = float((a - b).norm() / a.norm())
    assert rel < 0.10, rel
    # the recipe: the stem (first conv) stays fp32, the blocks are fused quantized conv+ReLU
    assert type(q.stem[0]) is torch.nn.Conv2d
    names = {type(m).__name__ for m in q.modules()}
    assert "ConvReLU2d" in names and "QuantizedConvReLU2d" not in {type(net.stem[0]).__name__}
    assert np.isfinite(rel)
