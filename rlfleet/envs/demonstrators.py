"""Scripted demonstrators: small hand-written policies that ``rlfleet record`` runs and that a
DAgger expert can be.

Each maps one observation to an action (the signature ``rlfleet record --policy MODULE:FUNCTION``
expects) and, given a batch ``[K, *obs]``, returns the K actions at once (an int64 array), so an
expert labelling every state of K environments costs one call. They are deliberately simple and
imperfect: learning from demonstrations is meant to beat them, not copy them.
:func:`import_policy` finds such a function by its ``MODULE:FUNCTION`` name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from rlfleet.errors import ConfigError

__all__ = ["cartpole_balance", "import_policy", "mountain_car_pump"]


def _action(choice: np.ndarray) -> Any:
    """One observation -> a Python int; a batch -> an int64 array."""
    return int(choice) if choice.ndim == 0 else choice.astype(np.int64)


def mountain_car_pump(obs: np.ndarray) -> Any:
    """MountainCar-v0: push in the direction of motion (energy pumping).

    Reaches the flag in every episode, in ~120 steps on average (return ~ -120 over seeds
    0..49); good control starts the first swing better and needs ~100-110.
    """
    obs = np.asarray(obs)
    return _action(np.where(obs[..., 1] >= 0.0, 2, 0))


def cartpole_balance(obs: np.ndarray) -> Any:
    """CartPole-v1: push towards where the pole is falling (angle plus damped angular speed)."""
    obs = np.asarray(obs)
    return _action((obs[..., 2] + 0.5 * obs[..., 3] > 0.0).astype(np.int64))


def import_policy(spec: str, what: str = "--policy") -> Callable[[np.ndarray], Any]:
    """``module:function`` -> the function; errors name ``what`` was given and what is missing."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{what} {spec!r} must look like MODULE:FUNCTION")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{what} {spec!r}: cannot import module {module_name!r}: {exc}") from exc
    policy = getattr(module, attr, None)
    if not callable(policy):
        public = sorted(
            n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))
        )
        raise ConfigError(
            f"{what} {spec!r}: {module_name} has no function {attr!r}; it has: {', '.join(public)}"
        )
    return policy
