"""Q-networks in the int8 form :mod:`rlfleet.models.int8` quantizes, for actors' action
selection (``actor.int8``).

:class:`QuantizableQNetwork` rebuilds a feed-forward :class:`~rlfleet.models.networks.QNetwork`
(conv / linear layers with ReLU, a dueling or linear head) with quant / dequant stubs: the
input scaling (and an observation normaliser) stay fp32, every conv/linear + ReLU pair is fused,
the head's linear layers are int8, and the dueling combination ``V + A - mean(A)`` runs in fp32
on dequantized outputs. The first layer stays fp32 by default, as the recipe advises (on a
one-conv MinAtar network that leaves only the linear layers in int8; ``float_first=False``
quantizes it too). Anything else -- an LSTM core, tanh activations, a policy-value network --
is refused with :class:`~rlfleet.errors.ConfigError` naming the module.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn as nn

from rlfleet.errors import ConfigError
from rlfleet.models.networks import DuelingHead, QNetwork

__all__ = ["QuantizableQNetwork", "int8_q_network"]

_LAYERS = (nn.Conv2d, nn.Linear)


def _flatten(module: nn.Module) -> list[nn.Module]:
    if isinstance(module, nn.Sequential):
        return [m for child in module for m in _flatten(child)]
    return [module]


class QuantizableQNetwork(nn.Module):
    """A copy of a feed-forward QNetwork with stubs and fusion groups (module docstring)."""

    def __init__(self, net: nn.Module, float_first: bool = True) -> None:
        super().__init__()
        if not isinstance(net, QNetwork):
            raise ConfigError(
                f"int8 acting quantizes feed-forward Q-networks; {type(net).__name__} is not one"
            )
        torso = net.torso
        layers = _flatten(torso.body)
        for m in layers:
            if not isinstance(m, (*_LAYERS, nn.ReLU, nn.Flatten)):
                raise ConfigError(
                    f"int8 acting cannot quantize a {type(m).__name__} in the torso; it handles "
                    "Conv2d, Linear, ReLU and Flatten (model.activation = 'relu', no LSTM core)"
                )
        head = net.head
        if isinstance(head, DuelingHead):
            self.value, self.advantage = head.value, head.advantage
        elif isinstance(head, nn.Linear):
            self.value, self.advantage = None, head
        else:
            raise ConfigError(f"int8 acting cannot quantize a {type(head).__name__} head")
        self.normalizer = torso.normalizer
        self.quant = torch.ao.quantization.QuantStub()
        self.body = nn.Sequential(*layers)
        self.dequant = torch.ao.quantization.DeQuantStub()
        self.dequant_v = torch.ao.quantization.DeQuantStub()
        self.float_first = float_first

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.float() * (1.0 / 255.0) if obs.dtype == torch.uint8 else obs.float()
        if self.normalizer is not None:
            x = self.normalizer(x)
        if self.float_first:
            x = self.body[0](x)
            x = self.body[1](x) if isinstance(self.body[1], nn.ReLU) else x
        x = self.quant(x)
        x = self.body[self._start :](x)
        adv = self.dequant(self.advantage(x))
        if self.value is None:
            return adv
        return self.dequant_v(self.value(x)) + adv - adv.mean(dim=1, keepdim=True)

    @property
    def _start(self) -> int:
        if not self.float_first:
            return 0
        return 2 if isinstance(self.body[1], nn.ReLU) else 1

    def fuse_groups(self) -> list[list[str]]:
        body = list(self.body)
        return [
            [f"body.{i}", f"body.{i + 1}"]
            for i in range(self._start, len(body) - 1)
            if isinstance(body[i], _LAYERS) and isinstance(body[i + 1], nn.ReLU)
        ]

    def float_modules(self) -> list[str]:
        # the fp32 first layer (and its ReLU) run before the quant stub; mark them fp32
        out = [f"body.{i}" for i in range(self._start)]
        if self.normalizer is not None:
            out.append("normalizer")
        return out


def int8_q_network(
    net: nn.Module,
    calibration: Iterable[torch.Tensor],
    observer: str = "minmax",
    float_first: bool = True,
) -> nn.Module:
    """An int8 copy of ``net`` calibrated on ``calibration`` observation batches."""
    from rlfleet.models.int8 import quantize

    wrapper = QuantizableQNetwork(net, float_first).eval()
    return quantize(wrapper, calibration, observer=observer)
