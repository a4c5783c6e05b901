"""Parameters as one flat float32 vector: what the transports publish and actors load.

Both ends build the same network from the same config, so a vector plus a layout signature is
enough; the signature (names, shapes) guards against loading into a different architecture.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

from rlfleet.errors import TransportError


def param_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def layout_signature(module: torch.nn.Module) -> int:
    """A 31-bit checksum of parameter names and shapes (same architecture <=> same signature)."""
    text = ";".join(f"{n}:{tuple(p.shape)}" for n, p in module.named_parameters())
    return zlib.crc32(text.encode()) & 0x7FFFFFFF


def flatten_into(module: torch.nn.Module, out: np.ndarray) -> np.ndarray:
    """Copy every parameter into ``out`` (preallocated float32 of :func:`param_count`)."""
    offset = 0
    with torch.no_grad():
        for p in module.parameters():
            n = p.numel()
            out[offset : offset + n] = p.detach().reshape(-1).numpy()
            offset += n
    if offset != out.shape[0]:
        raise TransportError(f"parameter vector has {out.shape[0]} values, network has {offset}")
    return out


def load_flat(module: torch.nn.Module, flat: np.ndarray) -> None:
    """Load a flat vector produced by :func:`flatten_into` into ``module`` in place."""
    total = param_count(module)
    if flat.shape != (total,):
        raise TransportError(f"parameter vector has shape {flat.shape}, network needs ({total},)")
    src = torch.from_numpy(flat)
    offset = 0
    with torch.no_grad():
        for p in module.parameters():
            n = p.numel()
            p.copy_(src[offset : offset + n].view_as(p))
            offset += n
