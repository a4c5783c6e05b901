"""Compound scaling of the CTC recognizer's backbone (EfficientNet, Tan & Le 2019): one
coefficient phi scales depth by ``alpha**phi`` (blocks per stage, rounded up), width by
``beta**phi`` (channels, rounded to a multiple of 8) and input resolution by ``gamma**phi`` (the
image height, a multiple of 4). Pure Python: configs read the height without importing torch."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ALPHA", "BASE_HEIGHT", "BETA", "GAMMA", "RecognizerShape", "scaled_shape"]

ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15
#: phi = 0: (channels, blocks, stride) per stage after a 3x3 stride-2 stem of STEM channels.
BASE_STAGES = ((32, 1, (1, 2)), (64, 2, (2, 1)), (96, 2, (2, 1)))
STEM = 16
BASE_HEIGHT = 32


@dataclass(frozen=True)
class RecognizerShape:
    """The backbone's sizes at one phi."""

    height: int
    stem: int
    stages: tuple[tuple[int, int, tuple[int, int]], ...]


def _channels(c: float) -> int:
    return max(8, int(round(c / 8)) * 8)


def scaled_shape(phi: int, base_height: int = BASE_HEIGHT) -> RecognizerShape:
    """Depth, width and input height of the backbone at compound coefficient ``phi``."""
    if phi < 0:
        raise ValueError(f"phi must be >= 0, got {phi}")
    d, w, r = ALPHA**phi, BETA**phi, GAMMA**phi
    stages = tuple((_channels(c * w), int(math.ceil(n * d)), s) for c, n, s in BASE_STAGES)
    height = int(round(base_height * r / 4)) * 4
    return RecognizerShape(height=height, stem=_channels(STEM * w), stages=stages)
