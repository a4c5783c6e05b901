"""int8 post-training remedies: the fp32 last layer (what is quantized changes), cross-layer
equalization (function unchanged, channel ranges balanced), empirical bias correction (mean
output of the weight-quantized conv matches fp32, against a naive reference), exact zero and
agreement with fp32 under each option."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from rlfleet.errors import ConfigError
from rlfleet.models.int8 import available_engines, fused_fp32, qconfig, quantize
from rlfleet.models.int8_adjust import correct_bias, equalization_available, equalize_pairs
from rlfleet.models.ocr import CtcRecognizer

pytestmark = [
    pytest.mark.unit,
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.skipif(not available_engines(), reason="torch build without quantized engines"),
]


def _trained_like() -> CtcRecognizer:
    """A recognizer with non-trivial BN statistics and channels of unequal ranges."""
    torch.manual_seed(0)
    net = CtcRecognizer(12)
    with torch.no_grad():
        for m in net.modules():  # spread the depthwise channels' ranges (as training does)
            if isinstance(m, nn.Conv2d) and m.groups > 1:
                m.weight.mul_(torch.logspace(-1, 1, m.weight.shape[0]).view(-1, 1, 1, 1))
        net.train()
        for _ in range(3):
            net(torch.randint(0, 256, (8, 1, 32, 96), dtype=torch.uint8))
    return net.eval()


def _data(seed: int, n: int = 2) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [
        torch.randint(0, 256, (8, 1, 32, 96), dtype=torch.uint8, generator=gen) for _ in range(n)
    ]


def _bare() -> nn.Module:
    """A quantizable model naming no fp32 head and no equalization pairs."""
    wrapped = torch.ao.quantization.QuantWrapper(nn.Conv2d(1, 2, 1))
    wrapped.fuse_groups = list
    wrapped.float_modules = list
    return wrapped


def test_float_head_keeps_the_classifier_fp32_and_moves_the_dequant_before_it():
    net = _trained_like()
    default = quantize(net, _data(1))
    head = quantize(net, _data(1), float_head=True)
    qconv = torch.ao.nn.quantized.Conv2d
    assert (
        type(default.classifier) is qconv and type(default.head_dequant).__name__ == "DeQuantStub"
    )
    assert type(default.dequant).__name__ == "DeQuantize"
    assert type(head.classifier) is nn.Conv2d
    assert type(head.head_dequant).__name__ == "DeQuantize"
    assert type(head.dequant).__name__ == "DeQuantStub"
    # the rest is int8 in both
    for q in (default, head):
        assert type(q.stem[0]) is nn.Conv2d
        assert type(q.blocks[0].pointwise[0]).__name__ == "ConvReLU2d"
        assert q.blocks[0].pointwise[0].__module__.startswith("torch.ao.nn.intrinsic.quantized")
    # the fp32 classifier holds the original weights
    assert torch.equal(head.classifier.weight, net.classifier.weight)


def _range(weight: torch.Tensor, axis: int) -> torch.Tensor:
    """max - min of each channel along ``axis`` (the range equalization balances)."""
    w = weight.detach().transpose(0, axis).flatten(1)
    return w.amax(dim=1) - w.amin(dim=1)


@pytest.mark.skipif(not equalization_available(), reason="no torch.ao.quantization._equalize")
def test_equalization_keeps_the_function_and_balances_the_pairs_ranges():
    net = _trained_like()
    fused = fused_fp32(net)
    before = [_range(fused.get_submodule(a)[0].weight, 0) for a, _ in net.equalize_pairs()]
    eq = fused_fp32(net)
    equalize_pairs(eq, net.equalize_pairs())
    x = _data(2, 1)[0]
    with torch.no_grad():
        assert torch.allclose(eq.logits(x), fused.logits(x), rtol=1e-4, atol=1e-4)
    for (a, b), old in zip(net.equalize_pairs(), before, strict=True):
        w1 = _range(eq.get_submodule(a)[0].weight, 0)  # output channels of the depthwise
        w2 = _range(eq.get_submodule(b)[0].weight, 1)  # input channels of the pointwise
        # each channel's range is now the same in both tensors (the equalization's fixed point)
        assert torch.allclose(w1, w2, rtol=1e-3), (a, b)
        assert not torch.allclose(w1, old)  # and the depthwise ranges did change
    # quantize(equalize=True) converts the equalized weights
    plain, equalized = quantize(net, _data(1)), quantize(net, _data(1), equalize=True)
    a, b = plain.blocks[0].depthwise[0].weight(), equalized.blocks[0].depthwise[0].weight()
    assert not torch.equal(a.dequantize(), b.dequantize())
    with pytest.raises(ConfigError, match="equalize_pairs"):
        quantize(_bare(), [torch.zeros(1, 1, 2, 2)], equalize=True)


@pytest.mark.parametrize("per_channel", [False, True])
def test_bias_correction_makes_the_mean_output_of_quantized_weights_match_fp32(per_channel):
    torch.manual_seed(3)
    conv = nn.Conv2d(4, 6, 3, padding=1)
    original = nn.Conv2d(4, 6, 3, padding=1)
    original.load_state_dict(conv.state_dict())
    data = [torch.rand(5, 4, 7, 9) + 0.5 for _ in range(3)]  # non-zero mean: a visible shift
    observer = qconfig(per_channel_weights=per_channel).weight
    correct_bias(nn.Sequential(conv), ["0"], observer, data)
    # naive reference: the quantize-dequantize of the weights, as the converted conv holds them
    obs = observer()
    obs(conv.weight.detach())
    scale, zp = obs.calculate_qparams()
    if per_channel:
        wq = torch.fake_quantize_per_channel_affine(
            conv.weight.detach(), scale, zp.int(), 0, -128, 127
        )
    else:
        wq = torch.fake_quantize_per_tensor_affine(
            conv.weight.detach(), float(scale), int(zp), -128, 127
        )
    with torch.no_grad():
        fp32 = torch.cat([original(x) for x in data]).mean(dim=(0, 2, 3))
        uncorrected = torch.cat(
            [nn.functional.conv2d(x, wq, original.bias, padding=1) for x in data]
        )
        corrected = torch.cat([nn.functional.conv2d(x, wq, conv.bias, padding=1) for x in data])
    assert (uncorrected.mean(dim=(0, 2, 3)) - fp32).abs().max() > 1e-4  # there was a shift
    assert torch.allclose(corrected.mean(dim=(0, 2, 3)), fp32, atol=1e-5)
    with pytest.raises(ConfigError, match="not a conv"):
        correct_bias(nn.Sequential(nn.ReLU()), ["0"], observer, data)


def test_bias_correction_changes_the_quantized_biases_only():
    net = _trained_like()
    plain = quantize(net, _data(1))
    corrected = quantize(net, _data(1), bias_correction=True)
    a, b = plain.blocks[1].depthwise[0], corrected.blocks[1].depthwise[0]
    assert torch.equal(a.weight().int_repr(), b.weight().int_repr())
    assert not torch.equal(a.bias(), b.bias())
    # the fp32 stem is untouched
    assert torch.equal(plain.stem[0].weight, corrected.stem[0].weight)


OPTIONS = [
    {"float_head": True},
    {"bias_correction": True},
    {"per_channel_weights": True, "bias_correction": True},
    {"per_channel_weights": True, "float_head": True},
] + (
    [{"equalize": True}, {"equalize": True, "bias_correction": True}]
    if equalization_available()
    else []
)


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor")
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "+".join(o))
def test_each_option_keeps_exact_zero_and_agrees_with_fp32(options):
    net = _trained_like()
    q = quantize(net, _data(1), **options)
    # every int8 activation is per-tensor affine with an integer zero point: 0.0 is exact
    scales = [(m.scale, m.zero_point) for m in q.modules() if hasattr(m, "zero_point")]
    assert scales
    for scale, zp in scales:
        assert float(zp) == int(zp) and 0 <= int(zp) <= 255
        z = torch.quantize_per_tensor(torch.zeros(3), float(scale), int(zp), torch.quint8)
        assert float(z.dequantize().abs().max()) == 0.0
    fixed = _data(7, 1)[0]
    with torch.inference_mode():
        a, b = net.logits(fixed), q.logits(fixed)
    # stated tolerance (as for the recipe): relative L2 error of the logits below 10 %
    assert b.shape == a.shape and torch.isfinite(b).all()
    assert float((a - b).norm() / a.norm()) < 0.10


def test_float_head_without_a_named_head_is_refused():
    with pytest.raises(ConfigError, match="float_head_modules"):
        quantize(_bare(), [torch.zeros(1, 1, 2, 2)], float_head=True)
