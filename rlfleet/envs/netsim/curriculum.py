"""A curriculum over the paths of a scenario sampler: paths where the agent's recent episodes
trail the best classic scheme are drawn more often.

Score of an episode on a path (scale-free, so sampled variants of one path compare):
``s = log(utilisation) - 0.2 log(max(1, p95 one-way delay / base one-way delay))``, the shape of
mvfst-rl's log reward on ground-truth quantities. Per base path, the reference is the best score
of Cubic, BBR and Copa on the nominal path (:func:`classic_reference`, ``REFERENCE_S`` simulated
seconds on the event engine, computed once per process on first use: ~10-20 s of CPU). The agent's
score is an EMA over its episodes on that path. Path ``i`` is drawn with probability

    w_i = floor / N + (1 - floor) softmax(gap / temperature)_i,   gap_i = ref_i - agent_i

(uniform until the path has been seen), so no path is ever starved.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from rlfleet.errors import ConfigError

SCHEMES = ("cubic", "bbr", "copa")
REFERENCE_S = 15.0


def path_score(utilisation: float, p95_ms: float, base_owd_ms: float) -> float:
    """The curriculum's score of one episode (see the module docstring)."""
    if not (utilisation > 0 and p95_ms > 0):
        return math.log(1e-3)
    return math.log(max(utilisation, 1e-3)) - 0.2 * math.log(max(1.0, p95_ms / base_owd_ms))


@functools.lru_cache(maxsize=32)
def classic_reference(path: str, seconds: float = REFERENCE_S) -> float:
    """Best :func:`path_score` of the classic schemes on Pantheon path ``path``."""
    from rlfleet.envs.netsim.evaluate import run_classic
    from rlfleet.envs.netsim.scenarios.pantheon import PANTHEON

    sc = PANTHEON[path]
    best = -math.inf
    for scheme in SCHEMES:
        m = run_classic(sc, scheme, duration_s=seconds, seed=0)
        best = max(best, path_score(m["utilisation"], m["delay_p95_ms"], sc.delay_ms))
    return best


class Curriculum:
    """Sampling weights over ``paths`` from the agent's recent scores.

    Args:
        paths: the sampler's base paths (Pantheon names).
        floor: share of the probability spread uniformly.
        temperature: softmax temperature on the score gaps.
        coeff: EMA coefficient of the agent's per-path score.
        reference: path -> classic reference score (default: :func:`classic_reference`).
    """

    def __init__(
        self,
        paths: Sequence[str],
        floor: float = 0.5,
        temperature: float = 0.25,
        coeff: float = 0.1,
        reference: dict[str, float] | None = None,
    ) -> None:
        if not paths:
            raise ConfigError("a curriculum needs at least one path")
        if not (0 <= floor <= 1 and temperature > 0 and 0 < coeff <= 1):
            raise ConfigError(
                f"need 0 <= floor <= 1, temperature > 0, 0 < coeff <= 1; got {floor}, "
                f"{temperature}, {coeff}"
            )
        self.paths = tuple(paths)
        self.floor, self.temperature, self.coeff = float(floor), float(temperature), float(coeff)
        self._reference = dict(reference) if reference is not None else None
        self.agent: dict[str, float] = {}

    def reference(self, path: str) -> float:
        if self._reference is None:
            self._reference = {}
        if path not in self._reference:
            self._reference[path] = classic_reference(path)
        return self._reference[path]

    def record(self, path: str, utilisation: float, p95_ms: float, base_owd_ms: float) -> None:
        """One finished episode of the agent on (a variant of) ``path``."""
        if path not in self.paths:
            return
        s = path_score(utilisation, p95_ms, base_owd_ms)
        old = self.agent.get(path)
        self.agent[path] = s if old is None else (1 - self.coeff) * old + self.coeff * s

    def gaps(self) -> np.ndarray:
        """ref - agent per path (0 for paths not seen yet)."""
        return np.array(
            [self.reference(p) - self.agent[p] if p in self.agent else 0.0 for p in self.paths]
        )

    def weights(self) -> np.ndarray:
        """Sampling probabilities over :attr:`paths`."""
        n = len(self.paths)
        if not self.agent:
            return np.full(n, 1.0 / n)
        z = self.gaps() / self.temperature
        soft = np.exp(z - z.max())
        soft /= soft.sum()
        return self.floor / n + (1.0 - self.floor) * soft
