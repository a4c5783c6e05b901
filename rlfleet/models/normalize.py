"""Observation normalisation inside the network: ``clip((x - mean) / sqrt(var + eps), -c, c)``.

The statistics live in the network, so they go wherever its parameters go:

* ``shift`` (the mean) and ``scale`` (the standard deviation) are float32 ``nn.Parameter``\\ s
  with ``requires_grad=False``: they are part of the flat vector the learner publishes, so actors
  and the evaluator normalise with exactly the statistics of the parameters they act with, and
  no optimizer ever changes them (they get no gradient);
* the exact running summary (``count``, ``mean``, ``m2`` in float64) is a set of buffers: saved
  in checkpoints and restored on resume, but not published (actors do not need it).

Only the learner calls :meth:`ObsNormalizer.update` (with observations of the data it trains on);
everyone else just applies it. Before the first update it is the identity.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from rlfleet.errors import ConfigError
from rlfleet.math.running_stats import RunningMeanStd

__all__ = ["OBS_CLIP", "ObsNormalizer", "find_obs_normalizer", "update_obs_stats"]

#: Normalised observations are clipped to +-this (baselines and SB3 use 10).
OBS_CLIP = 10.0


class ObsNormalizer(nn.Module):
    """Running mean/std normalisation of observations of ``shape``."""

    def __init__(self, shape: tuple[int, ...], clip: float = OBS_CLIP, eps: float = 1e-8) -> None:
        super().__init__()
        shape = tuple(int(d) for d in shape)
        if not clip > 0 or not eps > 0:
            raise ConfigError(f"clip and eps must be > 0, got {clip!r} and {eps!r}")
        self.shape, self.clip, self.eps = shape, float(clip), float(eps)
        self.shift = nn.Parameter(torch.zeros(shape), requires_grad=False)
        self.scale = nn.Parameter(torch.ones(shape), requires_grad=False)
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("m2", torch.zeros(shape, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.shift) / self.scale).clamp(-self.clip, self.clip)

    @torch.no_grad()
    def update(self, obs: Any) -> None:
        """Merge a batch of observations ``[N, *shape]`` into the statistics (batched)."""
        batch = obs.detach().cpu().numpy() if isinstance(obs, torch.Tensor) else np.asarray(obs)
        stats = RunningMeanStd(
            self.shape, float(self.count), self.mean.numpy().copy(), self.m2.numpy().copy()
        )
        stats.update(batch.reshape(-1, *self.shape))
        self.count.fill_(stats.count)
        self.mean.copy_(torch.from_numpy(stats.mean))
        self.m2.copy_(torch.from_numpy(stats.m2))
        self.shift.copy_(torch.from_numpy(stats.mean))
        self.scale.copy_(torch.from_numpy(np.sqrt(stats.var + self.eps)))


def find_obs_normalizer(net: nn.Module) -> ObsNormalizer | None:
    """The network's normaliser, or None when it normalises nothing."""
    for module in net.modules():
        if isinstance(module, ObsNormalizer):
            return module
    return None


def update_obs_stats(net: nn.Module, obs: Any) -> None:
    """Merge ``obs`` into ``net``'s normaliser, if it has one (a learner's hook; a no-op for
    networks built without ``normalize_obs``)."""
    normalizer = find_obs_normalizer(net)
    if normalizer is not None:
        normalizer.update(obs)
