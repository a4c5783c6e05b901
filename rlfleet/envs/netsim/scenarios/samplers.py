"""Random scenario generators as in mvfst-rl's mtenv branch: the trace of a calibrated Pantheon
path, with delay, bandwidth scale, loss and queue drawn log-uniformly from each sampler's ranges
(scale and loss stay at 1 and 0 with the sampler's probability)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from rlfleet.envs.netsim.scenarios.pantheon import PANTHEON
from rlfleet.envs.netsim.scenarios.spec import Scenario
from rlfleet.errors import ConfigError


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _sample(
    rng: np.random.Generator,
    traces: tuple[str, ...],
    delay: tuple[int, int],
    scale_range: tuple[float, float] | None,
    p_scale1: float,
    loss: tuple[float, float, float],
    queue: tuple[int, int],
    tag: str,
) -> Scenario:
    base = PANTHEON[traces[int(rng.integers(len(traces)))]]
    delay_ms = int(round(_log_uniform(rng, *delay)))
    scale = 1.0
    if scale_range is not None and rng.random() >= p_scale1:
        scale = _log_uniform(rng, *scale_range)
    p0, lo, hi = loss
    loss_up = 0.0 if rng.random() < p0 else _log_uniform(rng, lo, hi)
    q = int(round(_log_uniform(rng, *queue)))
    up = replace(base.uplink, scale=scale)
    return Scenario(
        f"{tag}:{base.name}:d{delay_ms}:x{scale:.3f}:l{loss_up:.4f}:q{q}",
        up,
        None,
        delay_ms,
        loss_up=loss_up,
        up_queue_packets=q,
        description=f"sampled by {tag} from {base.name}",
        tags=("sampled", tag),
    )


_CAL = (
    "nepal_to_aws_india",
    "mexico_cellular_to_aws_california",
    "aws_brazil_to_colombia_cellular",
    "india_to_aws_india",
    "aws_korea_to_china",
    "aws_california_to_mexico",
)
_HIGH = _CAL[3:]

#: Random scenario generators as in mvfst-rl's mtenv branch: name -> f(rng) -> Scenario.
SAMPLERS = {
    "random_traces_0_5": lambda rng: _sample(
        rng, _CAL, (5, 200), (0.5, 2.0), 0.1, (0.8, 0.01, 0.05), (10, 1000), "random_traces_0_5"
    ),
    "random_traces_0_5_narrow": lambda rng: _sample(
        rng,
        _CAL,
        (20, 150),
        (0.9, 1.1),
        0.0,
        (0.0, 0.01, 0.06),
        (10, 500),
        "random_traces_0_5_narrow",
    ),
    "random_traces_3_5": lambda rng: _sample(
        rng, _HIGH, (15, 100), None, 1.0, (1.0, 0.01, 0.05), (50, 1000), "random_traces_3_5"
    ),
    "random_traces_3_5_with_loss": lambda rng: _sample(
        rng,
        _HIGH,
        (15, 100),
        None,
        1.0,
        (0.5, 1e-4, 0.02),
        (50, 1000),
        "random_traces_3_5_with_loss",
    ),
}


def sample_scenario(sampler: str, rng: np.random.Generator) -> Scenario:
    """Draw one scenario from a named sampler."""
    try:
        fn = SAMPLERS[sampler]
    except KeyError:
        raise ConfigError(f"unknown sampler {sampler!r}; valid: {', '.join(SAMPLERS)}") from None
    return fn(rng)
