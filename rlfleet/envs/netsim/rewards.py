"""Reward options for netsim, computed per window from the 100-float mvfst-rl summary (the
same numbers the observation carries), vectorised over a batch of environments.

Window quantities (from the 20-field states of one 100 ms window):
``thr`` = mean throughput (field 17) in MB/s; ``d`` = max (or mean, ``max_delay=False``) of the
queueing delay lrtt - min RTT (field 5) in ms; ``lat`` = mean latest RTT (field 2) in ms;
``p`` = loss rate = lost / (lost + acked) bytes (fields 18, 16); ``rmin``, ``srtt`` = mean min
RTT (field 0) and mean smoothed RTT (field 3); ``C`` = path capacity in MB/s and ``R`` = base
RTT in ms (the scenario's ground truth).

``reward_kind``:

* ``log`` (default, mvfst-rl ``main``): ``a log(1e-5 + thr) - b log(1e-5 + d) - c log(1e-5 + lost_MB)``
* ``linear`` (the mvfst-rl paper): ``a thr - b d - c lost_MB``
* ``aurora`` (PCC-RL): ``1e-3 (10 thr_pps - 1000 lat_s - 2000 p)``, thr in packets of ``mss``/s
* ``orca``: ``(thr - 5 thr p / (1 - p)) / C * min(1, 1.25 rmin / srtt)`` (lost bytes/s priced 5x,
  scaled by the path's capacity, discounted once the RTT exceeds 1.25 min RTT)

``reward_coeffs = (a, b, c)`` weight the ``log`` / ``linear`` forms. Options for any kind:

* ``loss_penalty = L``: subtract ``L p`` (the loss *rate*, so the term has the same scale on
  every path; mvfst-rl's own ``c`` term prices lost MB, which vanishes on slow paths);
* ``reward_norm = "capacity"``: ``thr -> thr / C`` and ``d, lat -> d / R, lat / R`` before the
  formula (utilisation and RTT multiples instead of MB/s and ms), so rewards have one scale
  across paths 200x apart in bandwidth; ``"running"``: the window reward minus a running mean,
  divided by a running std, per path (mvfst-rl normalises per job; EMA with
  ``reward_norm_coeff``; a sampled scenario's path is its base trace), kept per environment
  object; ``"none"`` (default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rlfleet.errors import ConfigError

REWARD_KINDS = ("log", "linear", "aurora", "orca")
REWARD_NORMS = ("none", "capacity", "running")

# summary offsets: stats-major blocks of 20 fields (sum, mean, std, min, max)
_SUM, _MEAN, _MAX = 0, 20, 80


@dataclass(frozen=True)
class RewardSpec:
    """Which reward an environment emits (see the module docstring for the formulas)."""

    kind: str = "log"
    coeffs: tuple[float, float, float] = (1.0, 0.2, 0.0)
    max_delay: bool = True
    loss_penalty: float = 0.0
    norm: str = "none"
    norm_coeff: float = 1e-3

    def __post_init__(self) -> None:
        if self.kind not in REWARD_KINDS:
            raise ConfigError(
                f"unknown reward_kind {self.kind!r}; valid: {', '.join(REWARD_KINDS)}"
            )
        if self.norm not in REWARD_NORMS:
            raise ConfigError(
                f"unknown reward_norm {self.norm!r}; valid: {', '.join(REWARD_NORMS)}"
            )
        if len(self.coeffs) != 3 or not all(np.isfinite(c) for c in self.coeffs):
            raise ConfigError(f"reward_coeffs must be 3 finite numbers, got {self.coeffs!r}")
        if not (np.isfinite(self.loss_penalty) and self.loss_penalty >= 0):
            raise ConfigError(f"loss_penalty must be >= 0, got {self.loss_penalty!r}")
        if not 0 < self.norm_coeff <= 1:
            raise ConfigError(f"reward_norm_coeff must be in (0, 1], got {self.norm_coeff!r}")

    @classmethod
    def of(
        cls,
        reward_kind: str,
        reward_coeffs: Sequence[float],
        max_delay: bool,
        loss_penalty: float,
        reward_norm: str,
        reward_norm_coeff: float,
    ) -> RewardSpec:
        """The spec of an environment's reward arguments (numbers cast, then checked)."""
        return cls(
            reward_kind,
            tuple(float(c) for c in reward_coeffs),
            bool(max_delay),
            float(loss_penalty),
            reward_norm,
            float(reward_norm_coeff),
        )

    def running_norm(self) -> RunningRewardNorm | None:
        """A fresh per-path normaliser when ``norm`` is ``running``, else None."""
        return RunningRewardNorm(self.norm_coeff) if self.norm == "running" else None

    @property
    def engine_native(self) -> bool:
        """True when the engines' built-in mvfst-rl reward is the reward before any running
        normalisation (``log`` / ``linear``, no loss penalty, no capacity scaling)."""
        return self.kind in ("log", "linear") and self.loss_penalty == 0 and self.norm != "capacity"


def window_rewards(
    summary: np.ndarray,
    spec: RewardSpec,
    capacity_mbps: np.ndarray,
    base_rtt_ms: np.ndarray,
    mss: int = 1252,
) -> np.ndarray:
    """Rewards ``[B]`` of windows with summaries ``[B, >=100]`` (full 20-field layout).

    Rows whose window had no event (all-zero summary) get 0, as the engines do."""
    s = np.asarray(summary, dtype=np.float64)[:, :100]
    cap = np.asarray(capacity_mbps, dtype=np.float64) / 8.0  # MB/s
    rtt0 = np.maximum(np.asarray(base_rtt_ms, dtype=np.float64), 1e-9)
    thr = s[:, _MEAN + 17] * 1e-3  # KB/s -> MB/s
    d = (s[:, _MAX + 5] if spec.max_delay else s[:, _MEAN + 5]) * 100.0
    lat = s[:, _MEAN + 2] * 100.0
    lost_mb = s[:, _SUM + 18] * 1e-3
    acked_mb = s[:, _SUM + 16] * 1e-3
    tot = lost_mb + acked_mb
    p = np.divide(lost_mb, tot, out=np.zeros_like(tot), where=tot > 0)
    if spec.norm == "capacity":
        thr_u, d_u, lat_u = thr / np.maximum(cap, 1e-12), d / rtt0, lat / rtt0
    else:
        thr_u, d_u, lat_u = thr, d, lat
    a, b, c = spec.coeffs
    if spec.kind == "log":
        r = a * np.log(1e-5 + thr_u) - b * np.log(1e-5 + d_u)
        if c:
            r = r - c * np.log(1e-5 + lost_mb)
    elif spec.kind == "linear":
        r = a * thr_u - b * d_u - c * lost_mb
    elif spec.kind == "aurora":
        # raw: packets/s and seconds; capacity-normalised: utilisation and RTT multiples
        thr_a = thr_u if spec.norm == "capacity" else thr * 1e6 / mss
        lat_a = lat_u if spec.norm == "capacity" else lat / 1000.0
        r = 1e-3 * (10.0 * thr_a - 1000.0 * lat_a - 2000.0 * p)
    else:  # orca
        lost_rate = thr * np.divide(p, 1.0 - p, out=np.zeros_like(p), where=p < 1)
        srtt = s[:, _MEAN + 3]
        ratio = np.divide(1.25 * s[:, _MEAN + 0], srtt, out=np.ones_like(srtt), where=srtt > 0)
        r = (thr - 5.0 * lost_rate) / np.maximum(cap, 1e-12) * np.minimum(1.0, ratio)
    r = r - spec.loss_penalty * p
    empty = ~s.any(axis=1)
    return np.where(empty, 0.0, r)


def path_key(name: str, tags: Sequence[str] = ()) -> str:
    """The path a scenario belongs to for per-path statistics: a sampled scenario's base trace
    (``random_traces_0_5:nepal_to_aws_india:...`` -> ``nepal_to_aws_india``), else its name."""
    if "sampled" in tags and name.count(":") >= 2:
        return name.split(":")[1]
    return name


class RunningRewardNorm:
    """Per-path running mean / variance of window rewards (EMA with ``coeff``, the first sample
    initialises); ``__call__`` updates with the rewards and returns them normalised."""

    def __init__(self, coeff: float = 1e-3) -> None:
        self.coeff = float(coeff)
        self.stats: dict[str, list[float]] = {}  # key -> [mean, var, n]

    def __call__(self, keys: Sequence[str], rewards: np.ndarray) -> np.ndarray:
        r = np.asarray(rewards, dtype=np.float64)
        out = np.empty_like(r)
        ks = np.asarray(keys, dtype=object)
        for k in set(keys):
            idx = np.flatnonzero(ks == k)
            st = self.stats.get(k)
            x = r[idx]
            if st is None:
                st = self.stats[k] = [float(x.mean()), float(x.var()) if len(x) > 1 else 1.0, 0]
            # one EMA step per sample, batched: weights (1 - a)^(n-1-i) a for sample i
            a = self.coeff
            w = a * (1.0 - a) ** np.arange(len(x) - 1, -1, -1)
            decay = (1.0 - a) ** len(x)
            mean = decay * st[0] + float((w * x).sum())
            var = decay * st[1] + float((w * (x - mean) ** 2).sum())
            st[0], st[1], st[2] = mean, var, st[2] + len(x)
            out[idx] = (x - mean) / max(float(np.sqrt(var)), 1e-3)
        return out
