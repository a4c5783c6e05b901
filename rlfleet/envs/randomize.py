"""Domain randomization (Tobin et al. 2017): physical parameters drawn anew for every episode.

Configured as a table ``{name = range}`` (``env.randomize`` for training, ``eval.randomize`` to
evaluate elsewhere, e.g. outside the training ranges)::

    randomize = {length = [0.4, 0.6], masspole = [0.05, 0.2, "log"], force_mag = 12.0}

* ``[low, high]`` or ``[low, high, "uniform"]``: uniform on ``[low, high]``;
* ``[low, high, "log"]``: log-uniform (``exp(uniform(log low, log high))``, both > 0);
* a number: that value in every episode.

Parameters (the environment's own attributes; derived ones are recomputed):

* CartPole (``CartPole-v0``, ``CartPole-v1``, ``rlfleet/CartPoleNoVelocity-v1``): ``length``
  (half the pole's length, 0.5), ``masspole`` (0.1), ``masscart`` (1.0), ``force_mag`` (10.0),
  ``gravity`` (9.8);
* Pendulum (``Pendulum-v1``): ``mass`` (``m``, 1.0), ``length`` (``l``, 1.0), ``gravity``
  (``g``, 10.0);
* MuJoCo (``HalfCheetah-v5``, ``Hopper-v5``, ``Walker2d-v5``; the ``mujoco`` extra), through the
  compiled model's arrays: ``friction`` (the sliding friction coefficient of every geom,
  ``model.geom_friction[:, 0]``; HalfCheetah's is 0.4, Hopper's 0.9), ``mass_scale`` (every
  body's mass and inertia times this, 1.0 = the model's own) and ``gain_scale`` (every
  actuator's gain ``model.actuator_gainprm[:, 0]`` times this, 1.0 = the model's own).

:class:`DomainRandomization` wraps a Gymnasium env: at every reset it draws the episode's values,
sets them, and reports them in ``info["randomization"]`` (at reset and at every step). Draws
come from a generator of the wrapper's own, seeded from the reset seed, so the environment's
initial-state stream is untouched and a run is reproducible under its seed. The vectorised
CartPole (:class:`~rlfleet.envs.cartpole.VectorCartPole`) draws the same values with the same
generators (:class:`Randomizer`), so both paths play the same episodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from rlfleet.errors import ConfigError, EnvError

__all__ = [
    "PARAMETERS",
    "DomainRandomization",
    "MujocoModel",
    "ParamRange",
    "Randomizer",
    "apply_parameters",
    "parse_randomization",
]

#: Environment family -> {config name: attribute of the unwrapped environment}.
PARAMETERS: dict[str, dict[str, str]] = {
    "cartpole": {
        "length": "length",
        "masspole": "masspole",
        "masscart": "masscart",
        "force_mag": "force_mag",
        "gravity": "gravity",
    },
    "pendulum": {"mass": "m", "length": "l", "gravity": "g"},
    # not attributes: the model arrays they scale or set (MujocoModel)
    "mujoco": {"friction": "geom_friction", "mass_scale": "body_mass", "gain_scale": "gainprm"},
}
_FAMILIES = {
    "CartPole-v0": "cartpole",
    "CartPole-v1": "cartpole",
    "rlfleet/CartPoleNoVelocity-v1": "cartpole",
    "Pendulum-v1": "pendulum",
    "HalfCheetah-v5": "mujoco",
    "Hopper-v5": "mujoco",
    "Walker2d-v5": "mujoco",
}
#: Parameters that must stay > 0 (a range reaching 0 or below is refused).
_POSITIVE = ("length", "masspole", "masscart", "mass", "mass_scale", "gain_scale")
#: Mixed into the reset seed so parameter draws never share a stream with the env's own.
_STREAM = 0x5EED
_DISTRIBUTIONS = ("uniform", "log")


@dataclass(frozen=True)
class ParamRange:
    """One parameter's distribution: uniform or log-uniform on ``[low, high]``."""

    name: str
    low: float
    high: float
    log: bool = False

    def draw(self, rng: np.random.Generator) -> float:
        if self.low == self.high:
            return self.low
        if self.log:
            return float(np.exp(rng.uniform(np.log(self.low), np.log(self.high))))
        return float(rng.uniform(self.low, self.high))


def family_of(env_id: str) -> str:
    """The randomizable family of ``env_id``; EnvError naming the supported ids otherwise."""
    family = _FAMILIES.get(env_id)
    if family is None:
        raise EnvError(
            f"domain randomization is not available for {env_id!r}; supported: "
            f"{', '.join(_FAMILIES)}"
        )
    return family


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_randomization(env_id: str, table: Mapping[str, Any]) -> tuple[ParamRange, ...]:
    """Check a ``randomize`` table against ``env_id``; the ranges in name order.

    Raises:
        EnvError: an environment without randomizable parameters.
        ConfigError: an unknown parameter (the valid ones are named) or a malformed range.
    """
    valid = PARAMETERS[family_of(env_id)]
    out = []
    for name in sorted(table):
        value = table[name]
        where = f"randomize.{name}"
        if name not in valid:
            raise ConfigError(
                f"{where}: {env_id} has no parameter {name!r}; valid: {', '.join(valid)}"
            )
        if _number(value):
            low = high = float(value)
            kind = "uniform"
        elif (
            isinstance(value, list | tuple)
            and len(value) in (2, 3)
            and all(_number(v) for v in value[:2])
        ):
            low, high = float(value[0]), float(value[1])
            kind = value[2] if len(value) == 3 else "uniform"
            if kind not in _DISTRIBUTIONS:
                raise ConfigError(
                    f"{where}: distribution {kind!r} is unknown; valid: {', '.join(_DISTRIBUTIONS)}"
                )
        else:
            raise ConfigError(
                f'{where} = {value!r}: expected a number, [low, high] or [low, high, "log"]'
            )
        if not (np.isfinite(low) and np.isfinite(high)) or high < low:
            raise ConfigError(f"{where}: need finite low <= high, got [{low}, {high}]")
        if kind == "log" and low <= 0:
            raise ConfigError(f"{where}: a log-uniform range needs low > 0, got {low}")
        if low <= 0 and name in _POSITIVE:
            raise ConfigError(f"{where}: a {name} must be > 0, got low {low}")
        if low < 0 and name == "friction":
            raise ConfigError(f"{where}: a friction must be >= 0, got low {low}")
        out.append(ParamRange(name, low, high, kind == "log"))
    return tuple(out)


class Randomizer:
    """Draws one episode's parameters from ``ranges``; ``seed`` starts its own stream."""

    def __init__(self, ranges: tuple[ParamRange, ...], seed: int | None = None) -> None:
        self.ranges = ranges
        self.seed(seed)

    def seed(self, seed: int | None) -> None:
        """Restart the stream (None: from fresh entropy, like an unseeded Gymnasium reset)."""
        self.rng = np.random.default_rng(None if seed is None else [int(seed), _STREAM])

    def draw(self) -> dict[str, float]:
        return {r.name: r.draw(self.rng) for r in self.ranges}


class MujocoModel:
    """A MuJoCo environment's randomizable model arrays, with their nominal values kept so
    scales apply to the model's own values every episode (never compounding)."""

    def __init__(self, env: Any) -> None:
        self.model = env.model
        self.friction = self.model.geom_friction[:, 0].copy()
        self.mass = self.model.body_mass.copy()
        self.inertia = self.model.body_inertia.copy()
        self.gain = self.model.actuator_gainprm[:, 0].copy()

    def apply(self, values: Mapping[str, float]) -> None:
        """Set this episode's values; a parameter not drawn keeps the model's own."""
        m = self.model
        m.geom_friction[:, 0] = values.get("friction", self.friction)
        scale = values.get("mass_scale", 1.0)
        m.body_mass[:] = self.mass * scale
        m.body_inertia[:] = self.inertia * scale  # uniformly denser bodies: inertia scales too
        m.actuator_gainprm[:, 0] = self.gain * values.get("gain_scale", 1.0)


def apply_parameters(env: Any, family: str, values: Mapping[str, float]) -> None:
    """Set ``values`` on an unwrapped environment of ``family`` (and what derives from them)."""
    if family == "mujoco":
        raise EnvError("MuJoCo parameters are model arrays: apply them with MujocoModel")
    names = PARAMETERS[family]
    for name, value in values.items():
        setattr(env, names[name], float(value))
    if family == "cartpole":  # Gymnasium's CartPoleEnv derives these once, in __init__
        env.total_mass = env.masspole + env.masscart
        env.polemass_length = env.masspole * env.length


class DomainRandomization(gym.Wrapper):
    """New physical parameters at every reset, reported in ``info["randomization"]``."""

    def __init__(self, env: gym.Env, env_id: str, table: Mapping[str, Any]) -> None:
        super().__init__(env)
        self.family = family_of(env_id)
        self.randomizer = Randomizer(parse_randomization(env_id, table))
        self.model = MujocoModel(env.unwrapped) if self.family == "mujoco" else None
        self._seeded = False
        self.values: dict[str, float] = {}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> Any:
        if seed is not None or not self._seeded:
            self.randomizer.seed(seed)
            self._seeded = True
        self.values = self.randomizer.draw()
        if self.model is not None:
            self.model.apply(self.values)
        else:
            apply_parameters(self.env.unwrapped, self.family, self.values)
        obs, info = self.env.reset(seed=seed, options=options)
        return obs, {**info, "randomization": dict(self.values)}

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, "randomization": dict(self.values)}
