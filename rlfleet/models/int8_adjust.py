"""Post-training weight adjustments applied to a fused fp32 model before int8 calibration
(no training, no int8 kernels): the standard remedies for a depthwise-separable network whose
per-tensor weight scales lose accuracy (Nagel et al. 2019, "Data-Free Quantization Through
Weight Equalization and Bias Correction").

* :func:`equalize_pairs` -- **cross-layer equalization**: for a conv pair ``A -> ReLU -> B``,
  output channel ``c`` of ``A`` is divided by ``s_c`` and input channel ``c`` of ``B``
  multiplied by it (ReLU commutes with a positive scale), with ``s`` chosen so both tensors'
  per-channel ranges match; the function is unchanged, per-tensor weight scales waste less.
  Through torch's ``torch.ao.quantization._equalize`` when this build has it.
* :func:`correct_bias` -- **empirical bias correction**: the expected shift that weight
  quantization adds to each output channel, ``E[(W_q - W) * x]``, measured on calibration
  inputs and subtracted from the bias, so int8 outputs are unbiased per channel.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from rlfleet.errors import ConfigError

__all__ = ["correct_bias", "equalize_pairs", "equalization_available"]


def _equalize_module():  # noqa: ANN202 - a module or None
    try:  # private in torch 2.x (no public equivalent in eager mode); feature-detected
        mod = importlib.import_module("torch.ao.quantization._equalize")
    except ImportError:
        return None
    return mod if hasattr(mod, "equalize") else None


def equalization_available() -> bool:
    """Whether this torch build offers cross-layer equalization."""
    return _equalize_module() is not None


def equalize_pairs(model: nn.Module, pairs: list[list[str]], threshold: float = 1e-4) -> None:
    """Cross-layer equalization of the fused (BN-folded) conv ``pairs`` of ``model``, in place."""
    mod = _equalize_module()
    if mod is None:
        raise ConfigError(
            "this torch build has no torch.ao.quantization._equalize: int8 equalization is "
            "unavailable; valid: equalize=False"
        )
    if pairs:
        mod.equalize(model, pairs, threshold, inplace=True)


def _conv_of(module: nn.Module) -> nn.Conv2d | None:
    """The conv of a plain or fused (conv + ReLU) module, else None."""
    if type(module) is nn.Conv2d:
        return module
    if isinstance(module, torch.ao.nn.intrinsic.ConvReLU2d):
        return module[0]
    return None


def _fake_quantized_weight(weight: torch.Tensor, observer: nn.Module) -> torch.Tensor:
    """``weight`` quantized with the qparams ``observer`` picks for it, and dequantized."""
    observer(weight)
    scale, zero_point = observer.calculate_qparams()
    if observer.qscheme in (torch.per_channel_symmetric, torch.per_channel_affine):
        q = torch.quantize_per_channel(
            weight, scale, zero_point.long(), observer.ch_axis, observer.dtype
        )
    else:
        q = torch.quantize_per_tensor(weight, float(scale), int(zero_point), observer.dtype)
    return q.dequantize()


def correct_bias(
    model: nn.Module,
    names: list[str],
    weight_observer: Callable[[], nn.Module],
    calibrate: Callable[[nn.Module], None] | Iterable[torch.Tensor],
) -> None:
    """Subtract from each conv ``names`` of ``model`` (fp32, fused) the mean per-channel shift
    its weight quantization causes on the calibration inputs, in place.

    The shift of output channel ``c`` is the mean over the calibration batches and positions of
    ``conv(x, W_q - W)[c]``, where ``x`` is the conv's fp32 input (padding included, so border
    effects count) and ``W_q`` the weight as ``weight_observer`` quantizes it."""
    convs: dict[str, nn.Conv2d] = {}
    for name in names:
        conv = _conv_of(model.get_submodule(name))
        if conv is None:
            raise ConfigError(f"int8 bias correction: {name!r} is not a conv module")
        convs[name] = conv
    errors = {n: _fake_quantized_weight(c.weight.detach(), weight_observer()) - c.weight.detach()
              for n, c in convs.items()}  # fmt: skip
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}

    def hook(name: str):  # noqa: ANN202 - a forward pre-hook
        conv = convs[name]

        def pre(_module: nn.Module, args: tuple) -> None:
            x = args[0]
            shift = F.conv2d(x, errors[name], None, conv.stride, conv.padding, conv.dilation,
                             conv.groups)  # fmt: skip
            total = shift.sum(dim=(0, 2, 3))
            sums[name] = sums[name] + total if name in sums else total
            counts[name] = counts.get(name, 0) + shift.numel() // shift.shape[1]

        return pre

    handles = [c.register_forward_pre_hook(hook(n)) for n, c in convs.items()]
    try:
        with torch.no_grad():
            if callable(calibrate):
                calibrate(model)
            else:
                for batch in calibrate:
                    model(batch)
    finally:
        for h in handles:
            h.remove()
    with torch.no_grad():
        for name, conv in convs.items():
            if name not in sums:  # never ran on the calibration data: nothing measured
                continue
            shift = sums[name] / counts[name]
            if conv.bias is None:
                conv.bias = nn.Parameter(-shift.clone())
            else:
                conv.bias.sub_(shift)
