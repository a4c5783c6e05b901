"""Scripted demonstrators: small hand-written policies that ``rlfleet record`` can run.

Each maps ONE observation to an action, the signature ``rlfleet record --policy MODULE:FUNCTION``
expects. They are deliberately simple and imperfect: learning from demonstrations is meant to
beat them, not copy them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cartpole_balance", "mountain_car_pump"]


def mountain_car_pump(obs: np.ndarray) -> int:
    """MountainCar-v0: push in the direction of motion (energy pumping).

    Reaches the flag in every episode, in ~120 steps on average (return ~ -120 over seeds
    0..49); good control starts the first swing better and needs ~100-110.
    """
    return 2 if obs[1] >= 0.0 else 0


def cartpole_balance(obs: np.ndarray) -> int:
    """CartPole-v1: push towards where the pole is falling (angle plus damped angular speed)."""
    return int(obs[2] + 0.5 * obs[3] > 0.0)
