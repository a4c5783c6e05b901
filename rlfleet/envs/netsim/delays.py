"""Action-delay distributions for netsim's asynchronous mode.

In mvfst-rl the action for the observation at time t lands at t + Delta, where Delta is the real
RPC + inference time of the policy (its logs show 5-90 ms). ``action_delay_ms`` accepts:

* a number (or ``"fixed:D"``): Delta = D ms every step (0 = synchronous);
* ``"uniform:LO,HI"``: uniform in [LO, HI] ms;
* ``"lognormal:MEDIAN,SIGMA,MAX"``: exp(N(log MEDIAN, SIGMA^2)), clipped to MAX ms;
* ``"empirical:FILE"``: resampled from measured delays, a JSON list of ms (or an object with
  ``"samples_ms"``), e.g. the policy inference times ``rlfleet netsim latency`` writes.

A new Delta is drawn for every action from the environment's own generator. The compiled vector
engine rounds draws to whole ms (its clock ticks in ms); the event engine uses them as drawn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rlfleet.errors import ConfigError

_KINDS = "a number, fixed:D, uniform:LO,HI, lognormal:MEDIAN,SIGMA,MAX, empirical:FILE"


@dataclass(frozen=True)
class ActionDelay:
    """A distribution of action delays in ms (see the module docstring for the kinds)."""

    kind: str
    params: tuple[float, ...] = ()
    samples: tuple[float, ...] = ()

    @property
    def fixed(self) -> float | None:
        """The constant delay of a ``fixed`` distribution, else None."""
        return self.params[0] if self.kind == "fixed" else None

    @property
    def max_ms(self) -> float:
        """The largest delay the distribution can draw."""
        if self.kind in ("fixed", "uniform"):
            return self.params[-1]
        if self.kind == "lognormal":
            return self.params[2]
        return max(self.samples)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` delays (float64 ms)."""
        if self.kind == "fixed":
            return np.full(n, self.params[0])
        if self.kind == "uniform":
            return rng.uniform(self.params[0], self.params[1], n)
        if self.kind == "lognormal":
            med, sigma, hi = self.params
            return np.minimum(med * np.exp(sigma * rng.standard_normal(n)), hi)
        return np.asarray(self.samples)[rng.integers(len(self.samples), size=n)]


def _floats(text: str, n: int, spec: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != n or not all(np.isfinite(v) and v >= 0 for v in vals):
        raise ConfigError(f"action delay {spec!r}: expected {n} numbers >= 0; valid: {_KINDS}")
    return vals


def load_samples(path: str | Path) -> tuple[float, ...]:
    """Delays (ms) from a JSON file: a list, or an object with ``samples_ms``."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"action delay samples {str(path)!r}: cannot read: {exc}") from None
    if isinstance(data, dict):
        data = data.get("samples_ms")
    if not isinstance(data, list) or not data:
        raise ConfigError(f"action delay samples {str(path)!r}: need a non-empty list of ms")
    vals = np.asarray(data, dtype=np.float64)
    if not (np.isfinite(vals).all() and (vals >= 0).all()):
        raise ConfigError(f"action delay samples {str(path)!r}: need finite values >= 0")
    return tuple(float(v) for v in vals)


def parse_action_delay(spec: float | int | str | ActionDelay) -> ActionDelay:
    """An :class:`ActionDelay` from a number or a spec string (clear error on a bad one)."""
    if isinstance(spec, ActionDelay):
        return spec
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        if not (np.isfinite(spec) and spec >= 0):
            raise ConfigError(f"action_delay_ms must be >= 0, got {spec!r}")
        return ActionDelay("fixed", (float(spec),))
    if not isinstance(spec, str):
        raise ConfigError(f"action_delay_ms {spec!r}: expected {_KINDS}")
    kind, _, rest = spec.partition(":")
    if not rest:
        try:
            return parse_action_delay(float(spec))
        except ValueError:
            raise ConfigError(f"unknown action delay {spec!r}; valid: {_KINDS}") from None
    if kind == "fixed":
        return ActionDelay("fixed", _floats(rest, 1, spec))
    if kind == "uniform":
        lo, hi = _floats(rest, 2, spec)
        if hi < lo:
            raise ConfigError(f"action delay {spec!r}: need LO <= HI")
        return ActionDelay("uniform", (lo, hi))
    if kind == "lognormal":
        med, sigma, hi = _floats(rest, 3, spec)
        if med <= 0:
            raise ConfigError(f"action delay {spec!r}: MEDIAN must be > 0")
        return ActionDelay("lognormal", (med, sigma, hi))
    if kind == "empirical":
        return ActionDelay("empirical", (), load_samples(rest))
    raise ConfigError(f"unknown action delay {spec!r}; valid: {_KINDS}")
