"""Random scenario generators as in mvfst-rl's ``config/jobs/random_traces_*.yaml``: the trace of a
calibrated Pantheon path, with delay, bandwidth scale, loss and queue drawn by the reference's
``uniform_log(low, high, median)`` (``train/resolvers.py``), and the same ``choice`` weights.

One difference, on purpose: draws whose bandwidth-delay product exceeds the RL sender's cwnd cap
(2000 packets of 1252 bytes) are rejected and redrawn. No policy can fill such a path, so they
only teach the agent that ``*2`` is always right (8.7 % of ``random_traces_0_5`` draws).

``SAMPLER_PARAMS`` holds each sampler's distributions; :func:`draw` makes one raw draw (no
rejection) and :func:`sample_scenario` the scenario the environments use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from rlfleet.envs.netsim.scenarios.pantheon import PANTHEON
from rlfleet.envs.netsim.scenarios.spec import Scenario, build_schedule
from rlfleet.envs.netsim.schedule import OPPORTUNITY_BYTES
from rlfleet.errors import ConfigError

#: the RL flow's cwnd cap in bytes (mvfst: 2000 packets of 1252 bytes); paths with a larger BDP
#: are unfillable and are redrawn
MAX_BDP_BYTES = 2000 * 1252
_MAX_REDRAWS = 1000


def uniform_log(rng: np.random.Generator, low: float, high: float, median: float) -> float:
    """mvfst-rl's ``uniform_log``: uniform in ``[log(low + o), log(high + o)]`` minus the offset
    ``o = (median^2 - low high) / (low + high - 2 median)``, so that ``median`` is the median.
    Needs ``low < median < (low + high) / 2``."""
    if high == low:
        return float(low)
    den = low + high - 2.0 * median
    if not (high > low and median > low and den > 0):
        raise ConfigError(
            f"uniform_log needs low < median < (low + high) / 2, got {low}, {median}, {high}"
        )
    off = (median * median - low * high) / den
    u = rng.uniform(math.log(low + off), math.log(high + off))
    # the reference asserts low <= val <= high; clamp the last-ulp rounding instead
    return float(min(max(math.exp(u) - off, low), high))


def uniform_log_int(rng: np.random.Generator, low: int, high: int, median: int) -> int:
    """mvfst-rl's ``uniform_log_int``: the float draw rounded half up."""
    return int(uniform_log(rng, float(low), float(high), float(median)) + 0.5)


@dataclass(frozen=True)
class SamplerParams:
    """One sampler's distributions: ``(low, high, median)`` triples for ``uniform_log``; the
    trace scale is 1 with probability ``p_scale1`` (else drawn), the loss 0 with ``p_loss0``."""

    traces: tuple[str, ...]
    delay: tuple[int, int, int]
    scale: tuple[float, float, float]
    p_scale1: float
    loss: tuple[float, float, float]
    p_loss0: float
    queue: tuple[int, int, int]


_CAL = (
    "nepal_to_aws_india",
    "mexico_cellular_to_aws_california",
    "aws_brazil_to_colombia_cellular",
    "india_to_aws_india",
    "aws_korea_to_china",
    "aws_california_to_mexico",
)
_HIGH = _CAL[3:]

#: The reference's job files, transcribed (mvfst-rl ``config/jobs/random_traces_*.yaml``).
SAMPLER_PARAMS: dict[str, SamplerParams] = {
    "random_traces_0_5": SamplerParams(
        _CAL, (5, 200, 70), (0.5, 2.0, 1.0), 0.1, (0.01, 0.05, 0.02), 0.8, (10, 1000, 100)
    ),
    "random_traces_0_5_narrow": SamplerParams(
        _CAL, (20, 150, 50), (0.9, 1.1, 0.99), 0.25, (0.01, 0.06, 0.02), 0.8, (10, 500, 100)
    ),
    "random_traces_3_5": SamplerParams(
        _HIGH, (15, 100, 40), (0.5, 2.0, 1.0), 0.0, (0.0, 0.0, 0.0), 1.0, (50, 1000, 300)
    ),
    "random_traces_3_5_with_loss": SamplerParams(
        _HIGH, (15, 100, 40), (0.5, 2.0, 1.0), 0.0, (1e-4, 0.02, 0.005), 0.5, (50, 1000, 300)
    ),
}


def draw(
    p: SamplerParams, rng: np.random.Generator, weights: np.ndarray | None = None
) -> dict[str, float | int | str]:
    """One raw draw of a sampler (no rejection): trace, delay_ms, scale, loss, queue.
    ``weights`` (over ``p.traces``) replace the uniform trace choice (a curriculum's)."""
    if weights is None:
        trace = p.traces[int(rng.integers(len(p.traces)))]
    else:
        trace = p.traces[int(rng.choice(len(p.traces), p=weights))]
    delay = uniform_log_int(rng, *p.delay)
    scale = 1.0 if rng.random() < p.p_scale1 else uniform_log(rng, *p.scale)
    loss = 0.0 if rng.random() < p.p_loss0 else uniform_log(rng, *p.loss)
    queue = uniform_log_int(rng, *p.queue)
    return {"trace": trace, "delay_ms": delay, "scale": scale, "loss": loss, "queue": queue}


def bdp_bytes(trace: str, scale: float, delay_ms: float) -> float:
    """Nominal BDP of a draw: the base trace's opportunity rate times ``scale`` times 2 delay."""
    opp = build_schedule(PANTHEON[trace].uplink).opportunities_per_ms
    return opp * scale * OPPORTUNITY_BYTES * 2.0 * delay_ms


def _scenario(d: dict, tag: str) -> Scenario:
    base = PANTHEON[d["trace"]]
    scale, loss, delay, q = d["scale"], d["loss"], d["delay_ms"], d["queue"]
    return Scenario(
        f"{tag}:{base.name}:d{delay}:x{scale:.3f}:l{loss:.4f}:q{q}",
        replace(base.uplink, scale=scale),
        None,
        delay,
        loss_up=loss,
        up_queue_packets=q,
        description=f"sampled by {tag} from {base.name}",
        tags=("sampled", tag),
    )


#: sampler name -> f(rng) -> Scenario (kept for callers that iterate the names)
SAMPLERS = {name: (lambda rng, _n=name: sample_scenario(_n, rng)) for name in SAMPLER_PARAMS}


def sample_scenario(
    sampler: str, rng: np.random.Generator, weights: np.ndarray | None = None
) -> Scenario:
    """Draw one scenario from a named sampler, redrawing paths the RL flow cannot fill;
    ``weights`` over the sampler's traces (``SAMPLER_PARAMS[sampler].traces``) bias the trace."""
    try:
        p = SAMPLER_PARAMS[sampler]
    except KeyError:
        raise ConfigError(
            f"unknown sampler {sampler!r}; valid: {', '.join(SAMPLER_PARAMS)}"
        ) from None
    for _ in range(_MAX_REDRAWS):
        d = draw(p, rng, weights)
        if bdp_bytes(d["trace"], d["scale"], d["delay_ms"]) <= MAX_BDP_BYTES:
            return _scenario(d, sampler)
    raise ConfigError(f"sampler {sampler!r}: no fillable path in {_MAX_REDRAWS} draws")
