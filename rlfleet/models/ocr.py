"""A fully-convolutional CTC text recognizer with compound scaling.

The backbone reads a grayscale word image ``[B, 1, H, W]`` and strides it to ``W / 4`` columns
(height down to a few rows, then averaged): a stem convolution, then stages of
depthwise-separable blocks (3x3 depthwise conv + BN + ReLU, 1x1 pointwise conv + BN + ReLU,
a residual add where the shape allows, as in MobileNet / ShuffleNet-style blocks), and a 1x1
per-column classifier over the blank and the characters. No recurrence: every column is
computed at once, so a batch of words costs one forward pass, and the model quantizes with
PyTorch's eager int8 path (:mod:`rlfleet.models.int8`): the ``quant`` / ``dequant`` stubs sit
after the stem (the first convolution stays fp32, as the source recipe advises) and before the
log-softmax (or, with the classifier kept fp32, ``head_dequant`` before it:
:meth:`float_head_modules`); every conv + BN + ReLU triple is listed for fusion by
:meth:`fuse_groups`, each block's depthwise / pointwise pair for equalization by
:meth:`equalize_pairs`.

**Compound scaling** (EfficientNet, Tan & Le 2019): one coefficient phi scales depth by
``alpha**phi`` (blocks per stage, rounded up), width by ``beta**phi`` (channels, rounded to a
multiple of 8) and input resolution by ``gamma**phi`` (image height, a multiple of 4), with
alpha 1.2, beta 1.1, gamma 1.15.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from rlfleet.models.scaling import BASE_HEIGHT, scaled_shape

__all__ = ["CtcRecognizer", "SeparableBlock"]


def _publish_batchnorm_statistics(module: nn.Module) -> None:
    """Turn every BatchNorm's running mean and variance into ``nn.Parameter``s without
    gradient. rlfleet publishes a network as the flat vector of its parameters (buffers are not
    sent; :mod:`rlfleet.models.params`), and actors and the evaluator run the recognizer in eval
    mode, on these statistics: as buffers they would stay at their initial 0 / 1 there. (The
    observation normaliser keeps its statistics the same way.) BatchNorm still updates them in
    place in training mode, and the optimizer skips them (they never get a gradient)."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            for name in ("running_mean", "running_var"):
                value = getattr(m, name)
                delattr(m, name)
                m.register_parameter(name, nn.Parameter(value, requires_grad=False))


class _ConvBnRelu(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, k: int, stride=1, groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
        )


class SeparableBlock(nn.Module):
    """Depthwise 3x3 (strided) + pointwise 1x1, each with BN and ReLU; residual when shapes match."""

    def __init__(self, c_in: int, c_out: int, stride: tuple[int, int]) -> None:
        super().__init__()
        self.depthwise = _ConvBnRelu(c_in, c_in, 3, stride, groups=c_in)
        self.pointwise = _ConvBnRelu(c_in, c_out, 1)
        self.residual = c_in == c_out and tuple(stride) == (1, 1)
        # an add the int8 converter can replace with a quantized add (only where one runs:
        # an observer that never sees data has no range)
        self.add = torch.ao.nn.quantized.FloatFunctional() if self.residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pointwise(self.depthwise(x))
        return self.add.add(x, y) if self.add is not None else y


class CtcRecognizer(nn.Module):
    """Image ``[B, 1, H, W]`` (uint8 or float in [0, 1]) -> per-column log-probabilities
    ``[B, W/4, num_classes]`` (class 0 is the CTC blank)."""

    def __init__(self, num_classes: int, phi: int = 0, base_height: int = BASE_HEIGHT) -> None:
        super().__init__()
        shape = scaled_shape(phi, base_height)
        self.shape, self.phi, self.num_classes = shape, phi, num_classes
        self.stem = nn.Sequential(
            nn.Conv2d(1, shape.stem, 3, (2, 2), 1, bias=False),
            nn.BatchNorm2d(shape.stem),
            nn.ReLU(),
        )
        self.quant = torch.ao.quantization.QuantStub()
        blocks: list[nn.Module] = []
        c = shape.stem
        h = -(-shape.height // 2)
        for c_out, n, stride in shape.stages:
            for i in range(n):
                s = stride if i == 0 else (1, 1)
                blocks.append(SeparableBlock(c, c_out, s))
                c = c_out
                h = -(-h // s[0])
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AvgPool2d((h, 1))  # the remaining rows, averaged: one feature per column
        # int8 ends at `dequant` (after the classifier) by default, or at `head_dequant` (before
        # it) when the classifier stays fp32; the other stub stays an identity (fp32 modules)
        self.head_dequant = torch.ao.quantization.DeQuantStub()
        self.classifier = nn.Conv2d(c, num_classes, 1)
        self.dequant = torch.ao.quantization.DeQuantStub()
        _publish_batchnorm_statistics(self)

    @property
    def height(self) -> int:
        return self.shape.height

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Unnormalised class scores ``[B, T, C]``."""
        if images.dim() == 3:
            images = images.unsqueeze(1)
        x = images.float()
        if images.dtype == torch.uint8:
            x = x * (1.0 / 255.0)
        x = self.quant(self.stem(x))
        x = self.classifier(self.head_dequant(self.pool(self.blocks(x))))
        return self.dequant(x).squeeze(2).transpose(1, 2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.logits(images), dim=-1)

    def fuse_groups(self) -> list[list[str]]:
        """Module names fused for int8: every conv + BN + ReLU triple (the stem stays fp32)."""
        groups = []
        for name, module in self.named_modules():
            if isinstance(module, _ConvBnRelu):
                groups.append([f"{name}.0", f"{name}.1", f"{name}.2"])
        return groups

    def float_modules(self) -> list[str]:
        """Modules int8 conversion leaves in fp32: the first convolution (and the unused stub)."""
        return ["stem", "head_dequant"]

    def float_head_modules(self) -> list[str]:
        """fp32 modules when the last layer stays fp32 too: int8 ends before the classifier."""
        return ["stem", "classifier", "dequant"]

    def equalize_pairs(self) -> list[list[str]]:
        """Fused conv pairs (depthwise -> ReLU -> pointwise of each block) whose channel ranges
        cross-layer equalization may balance: the function of the block is unchanged."""
        return [
            [f"{name}.depthwise.0", f"{name}.pointwise.0"]
            for name, module in self.named_modules()
            if isinstance(module, SeparableBlock)
        ]
