"""Post-training int8 quantization through PyTorch's eager-mode support (``torch.ao``), shared by
the OCR recognizer and actors' policy networks.

The recipe (from the source's text recognizer): per-tensor affine quantization, whose integer
zero point makes 0.0 exactly representable (padding and ReLU zeros stay exact); conv + BN + ReLU
fused before observing, so a ReLU output's range starts at 0 and uses the whole uint8 range
instead of wasting half of it on negatives that never occur; activation ranges calibrated on
real inputs, either by **minimising the L2 quantization error over a histogram**
(``HistogramObserver``, the default) or by min/max (``MinMaxObserver``, for comparison); weights
per-tensor symmetric int8; the first convolution left in fp32. Nothing here hand-writes int8
kernels: the quantized modules are torch's (engine ``x86`` / ``fbgemm`` / ``onednn`` /
``qnnpack``, whichever this build has; :func:`pick_engine`).

A model opts in by holding ``QuantStub`` / ``DeQuantStub`` modules where int8 starts and ends
and by naming its fusion groups (:class:`Quantizable`); :func:`quantize` returns a converted
copy (the fp32 model is untouched).

Options beyond the recipe (post-training remedies, off by default): per-output-channel weight
scales; the model's last layer kept fp32 too (``float_head``: the model names those modules in
``float_head_modules``); cross-layer equalization of the conv pairs the model names in
``equalize_pairs`` and empirical bias correction (:mod:`rlfleet.models.int8_adjust`).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Iterable
from typing import Protocol

import torch
import torch.nn as nn

from rlfleet.errors import ConfigError
from rlfleet.models.int8_adjust import correct_bias, equalize_pairs

__all__ = [
    "ENGINE_ORDER",
    "OBSERVERS",
    "Quantizable",
    "available_engines",
    "fake_quantize",
    "fused_fp32",
    "pick_engine",
    "qconfig",
    "quantize",
]

#: Engines in order of preference on x86 CPUs (the first this build supports is used).
ENGINE_ORDER = ("x86", "fbgemm", "onednn", "qnnpack")
#: Activation observers: L2-minimising histogram search, or plain min/max.
OBSERVERS = ("histogram", "minmax")


class Quantizable(Protocol):
    """What :func:`quantize` needs from a model besides its stubs."""

    def fuse_groups(self) -> list[list[str]]: ...

    def float_modules(self) -> list[str]: ...


# Optional, looked up when an option asks for them:
#   float_head_modules() -> list[str]  the fp32 modules when the last layer stays fp32 too
#   equalize_pairs() -> list[list[str]]  fused conv pairs (A -> ReLU -> B) to equalize


def available_engines() -> tuple[str, ...]:
    """The quantized engines of this torch build (empty without int8 support)."""
    try:
        found = set(torch.backends.quantized.supported_engines)
    except AttributeError:  # a build without quantization
        return ()
    return tuple(e for e in ENGINE_ORDER if e in found)


def pick_engine(engine: str = "auto") -> str:
    """``engine`` if this build has it (``auto``: the first of :data:`ENGINE_ORDER` it has);
    ConfigError naming the available ones otherwise."""
    have = available_engines()
    if not have:
        raise ConfigError("this torch build has no quantized engine: int8 inference is unavailable")
    if engine == "auto":
        return have[0]
    if engine not in have:
        raise ConfigError(
            f"quantized engine {engine!r} is not in this build; valid: {', '.join(have)}"
        )
    return engine


def qconfig(
    observer: str = "histogram", reduce_range: bool = False, per_channel_weights: bool = False
) -> torch.ao.quantization.QConfig:
    """Per-tensor affine uint8 activations observed by ``observer``; symmetric int8 weights from
    their min/max (known exactly), per tensor (the recipe) or per output channel (an option:
    depthwise convolutions' channels differ widely in range)."""
    q = torch.ao.quantization
    if observer not in OBSERVERS:
        raise ConfigError(f"int8 observer {observer!r} is unknown; valid: {', '.join(OBSERVERS)}")
    act_class = q.HistogramObserver if observer == "histogram" else q.MinMaxObserver
    activation = act_class.with_args(
        dtype=torch.quint8, qscheme=torch.per_tensor_affine, reduce_range=reduce_range
    )
    if per_channel_weights:
        weight = q.PerChannelMinMaxObserver.with_args(
            dtype=torch.qint8, qscheme=torch.per_channel_symmetric
        )
    else:
        weight = q.MinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
    return q.QConfig(activation=activation, weight=weight)


def quantize(
    model: nn.Module,
    calibrate: Callable[[nn.Module], None] | Iterable[torch.Tensor],
    observer: str = "histogram",
    engine: str = "auto",
    reduce_range: bool = False,
    per_channel_weights: bool = False,
    float_head: bool = False,
    equalize: bool = False,
    bias_correction: bool = False,
) -> nn.Module:
    """An int8 copy of ``model`` (a :class:`Quantizable` with quant/dequant stubs).

    ``calibrate`` runs the prepared model on representative data: a callable taking the model,
    or an iterable of input batches (run twice with ``bias_correction``, so not a one-shot
    iterator). ``float_head`` keeps the model's last layer fp32 (its ``float_head_modules``);
    ``equalize`` equalizes its ``equalize_pairs`` across layers before calibrating;
    ``bias_correction`` removes the mean shift weight quantization adds to each quantized conv's
    output channels (:mod:`rlfleet.models.int8_adjust`). The copy is in eval mode and must run with
    ``torch.backends.quantized.engine`` set to the engine returned by :func:`pick_engine`
    (this function sets it)."""
    torch.backends.quantized.engine = pick_engine(engine)
    if not (hasattr(model, "fuse_groups") and hasattr(model, "float_modules")):
        raise ConfigError(
            f"{type(model).__name__} cannot be quantized: it names no fusion groups / fp32 modules"
        )
    with warnings.catch_warnings():
        # torch 2.13 marks torch.ao.quantization deprecated (moving to torchao); it still works
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", "torch.quantize_per_tensor", UserWarning)
        return _quantize(
            model,
            calibrate,
            qconfig(observer, reduce_range, per_channel_weights),
            _float_names(model, float_head),
            equalize,
            bias_correction,
        )


def _float_names(model: nn.Module, float_head: bool) -> list[str]:
    if not float_head:
        return model.float_modules()
    if not hasattr(model, "float_head_modules"):
        raise ConfigError(
            f"{type(model).__name__} names no last layer to keep fp32 (float_head_modules); "
            "valid: float_head=False"
        )
    return model.float_head_modules()


def _quantize(
    model: nn.Module,
    calibrate: Callable[[nn.Module], None] | Iterable[torch.Tensor],
    config: torch.ao.quantization.QConfig,
    float_names: list[str],
    equalize: bool,
    bias_correction: bool,
) -> nn.Module:
    q = torch.ao.quantization
    work = copy.deepcopy(model).eval()
    groups = work.fuse_groups()
    if groups:
        q.fuse_modules(work, groups, inplace=True)
    if equalize:
        if not hasattr(work, "equalize_pairs"):
            raise ConfigError(
                f"{type(model).__name__} names no conv pairs to equalize (equalize_pairs); "
                "valid: equalize=False"
            )
        equalize_pairs(work, work.equalize_pairs())
    if bias_correction:
        correct_bias(work, _quantized_convs(work, float_names), config.weight, calibrate)
    work.qconfig = config
    for name in float_names:
        work.get_submodule(name).qconfig = None
    q.prepare(work, inplace=True)
    with torch.inference_mode():
        if callable(calibrate):
            calibrate(work)
        else:
            for batch in calibrate:
                work(batch)
    q.convert(work, inplace=True)
    return work


def _quantized_convs(model: nn.Module, float_names: list[str]) -> list[str]:
    """Names of the (fused) conv modules conversion will quantize: not under an fp32 module,
    a fused conv + ReLU counted once (not also its inner conv)."""
    out: list[str] = []
    fused: set[str] = set()
    for name, module in model.named_modules():
        if any(name == f or name.startswith(f + ".") for f in float_names):
            continue
        if isinstance(module, torch.ao.nn.intrinsic.ConvReLU2d):
            fused.add(name)
            out.append(name)
        elif type(module) is nn.Conv2d and name.rsplit(".", 1)[0] not in fused:
            out.append(name)
    return out


def fake_quantize(x: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    """Quantize to uint8 (per-tensor affine) and back: what an int8 activation holds."""
    return torch.dequantize(torch.quantize_per_tensor(x, scale, zero_point, torch.quint8))


def fused_fp32(model: nn.Module) -> nn.Module:
    """An fp32 copy of ``model`` in eval mode with its fusion groups folded (BN into the conv,
    the ReLU fused): the fair fp32 baseline for int8 timings."""
    work = copy.deepcopy(model).eval()
    groups = work.fuse_groups() if hasattr(work, "fuse_groups") else []
    if groups:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.ao.quantization.fuse_modules(work, groups, inplace=True)
    return work
