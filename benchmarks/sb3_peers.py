"""What the Stable-Baselines3 peers of the benchmarks share: whether SB3 is installed here, and
the RL Zoo's linear schedules."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable


def sb3_available() -> bool:
    """True if stable-baselines3 can be imported (the peers are skipped otherwise)."""
    return importlib.util.find_spec("stable_baselines3") is not None


def linear_schedule(initial: float) -> Callable[[float], float]:
    """The Zoo's ``lin_X``: X * progress_remaining (1 at the start, 0 at n_timesteps)."""

    def schedule(progress_remaining: float) -> float:
        return progress_remaining * initial

    return schedule
