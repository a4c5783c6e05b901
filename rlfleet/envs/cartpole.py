"""CartPole stepped as one numpy array: the fast path for ``CartPole-v0`` / ``CartPole-v1``.

CartPole solve time is one of rlfleet's headline figures, and with K environments the per-env
Python loop of :class:`~rlfleet.envs.vector.BatchedEnv` costs ~10-15 µs per environment (most of
it Gymnasium's per-step checks), more than the physics. This class advances all K carts with one
set of array operations, reproducing Gymnasium's ``CartPoleEnv`` exactly: the same constants,
Euler integration in the same operation order (float64 state, float32 observations), reward 1.0
per step including the terminal one, the id's ``TimeLimit`` (truncation when the elapsed steps
reach the limit), and resets drawn from each environment's own generator seeded ``seed + i``, as
``env.reset(seed=seed + i)`` would. The unit tests compare it step by step with Gymnasium's env.

``rlfleet/CartPoleNoVelocity-v1`` is CartPole-v1 observed through cart position and pole angle
only (no velocities): a partially observed task whose policy must infer the velocities from
memory, the standard check that a recurrent core remembers. It is registered with Gymnasium (the
single-env path) and runs on this fast path too.

Domain randomization (``randomize``, :mod:`rlfleet.envs.randomize`) gives each cart its own
physical parameters, drawn at every reset of that cart by the same per-env generators as the
Gymnasium wrapper's (so both paths play the same episodes); :attr:`VectorCartPole.parameters`
holds the current values. Without it the constants are plain floats, as before.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding

from rlfleet.envs.randomize import ParamRange, Randomizer
from rlfleet.envs.vector import BatchedEnv, StepResult
from rlfleet.errors import EnvError

__all__ = ["NO_VELOCITY_ID", "VectorCartPole", "register_cartpole_variants"]

NO_VELOCITY_ID = "rlfleet/CartPoleNoVelocity-v1"
_POSITIONS = [0, 2]  # cart position and pole angle; the velocities 1 and 3 are hidden


class NoVelocityObservation(gym.ObservationWrapper):
    """CartPole observed through cart position and pole angle only."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        space = env.observation_space
        self.observation_space = gym.spaces.Box(
            space.low[_POSITIONS], space.high[_POSITIONS], dtype=space.dtype
        )

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation[_POSITIONS]


def make_no_velocity_cartpole(**kwargs) -> gym.Env:
    """Gymnasium entry point of ``rlfleet/CartPoleNoVelocity-v1``."""
    from gymnasium.envs.classic_control import CartPoleEnv

    return NoVelocityObservation(CartPoleEnv(**kwargs))


def register_cartpole_variants() -> None:
    """Register ``rlfleet/CartPoleNoVelocity-v1`` (CartPole-v1's limit and threshold); idempotent."""
    if NO_VELOCITY_ID not in gym.registry:
        gym.register(
            NO_VELOCITY_ID,
            entry_point=make_no_velocity_cartpole,
            max_episode_steps=500,
            reward_threshold=475.0,
        )


# Gymnasium CartPoleEnv constants.
_GRAVITY = 9.8
_MASSCART = 1.0
_MASSPOLE = 0.1
_LENGTH = 0.5
_FORCE_MAG = 10.0
_TAU = 0.02
_THETA_THRESHOLD = 12 * 2 * math.pi / 360
_X_THRESHOLD = 2.4


class VectorCartPole(BatchedEnv):
    """K CartPoles as arrays; same interface and semantics as :class:`BatchedEnv`."""

    def __init__(
        self,
        num_envs: int,
        seed: int,
        max_episode_steps: int,
        env_id: str = "CartPole-v1",
        randomize: tuple[ParamRange, ...] = (),
    ) -> None:
        if num_envs < 1:
            raise EnvError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        # The spaces of the Gymnasium env, so callers see exactly what gym.make would give.
        probe = gym.make(env_id)
        self.envs = []
        self.env_id = env_id
        self.seed = int(seed)
        self.num_envs = int(num_envs)
        self.observation_space = probe.observation_space
        self.action_space = probe.action_space
        probe.close()
        # The no-velocity variant observes columns 0 and 2 of the same physical state.
        self._observed = _POSITIONS if env_id == NO_VELOCITY_ID else slice(None)
        self.obs_shape = tuple(self.observation_space.shape)
        self.obs_dtype = np.dtype(np.float32)
        self.max_episode_steps = int(max_episode_steps)
        self._state = np.zeros((self.num_envs, 4), dtype=np.float64)
        self._elapsed = np.zeros(self.num_envs, dtype=np.int64)
        self._rngs: list[np.random.Generator] = []
        self._ep_return = np.zeros(self.num_envs, dtype=np.float64)
        self._ep_length = np.zeros(self.num_envs, dtype=np.int64)
        self._needs_reset = True
        self._closed = False
        self.randomize = tuple(randomize)
        self._randomizers: list[Randomizer] = []
        #: physical parameters: floats, or one value per cart [K] when randomized
        self.parameters: dict[str, float | np.ndarray] = {
            "gravity": _GRAVITY,
            "masspole": _MASSPOLE,
            "masscart": _MASSCART,
            "length": _LENGTH,
            "force_mag": _FORCE_MAG,
        }
        self._derive()

    def _derive(self) -> None:
        p = self.parameters
        # the same expressions as Gymnasium's __init__ (and the module constants)
        self._total_mass = p["masspole"] + p["masscart"]
        self._polemass_length = p["masspole"] * p["length"]

    def _draw(self, envs: list[int]) -> None:
        """New parameters for carts ``envs`` (at their resets)."""
        for i in envs:
            for name, value in self._randomizers[i].draw().items():
                self.parameters[name][i] = value  # type: ignore[index]
        self._derive()

    def reset(self) -> np.ndarray:
        """Reset all carts (seeding env i with ``seed + i`` on the first call); [K, 4] float32
        ([K, 2] for the no-velocity variant)."""
        if self._needs_reset:
            self._rngs = [seeding.np_random(self.seed + i)[0] for i in range(self.num_envs)]
            self.action_space.seed(self.seed)
            if self.randomize:
                self._randomizers = [
                    Randomizer(self.randomize, self.seed + i) for i in range(self.num_envs)
                ]
                for r in self.randomize:
                    self.parameters[r.name] = np.full(self.num_envs, np.nan)
        if self.randomize:
            self._draw(list(range(self.num_envs)))
        for i, rng in enumerate(self._rngs):
            self._state[i] = rng.uniform(low=-0.05, high=0.05, size=(4,))
        self._elapsed[:] = 0
        self._ep_return[:] = 0.0
        self._ep_length[:] = 0
        self._needs_reset = False
        return self._state[:, self._observed].astype(np.float32)

    def step(self, actions: np.ndarray) -> StepResult:
        """Step all K carts with ``actions`` (0 = push left, 1 = push right)."""
        if self._needs_reset:
            raise EnvError("call reset() before step() (the environments have not been reset)")
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise EnvError(
                f"actions must have {self.num_envs} rows (one per env), got shape {actions.shape}"
            )
        if ((actions != 0) & (actions != 1)).any():
            bad = actions[(actions != 0) & (actions != 1)]
            raise EnvError(f"{self.env_id} actions must be 0 or 1, got {bad.tolist()}")

        s = self._state
        x, x_dot, theta, theta_dot = s[:, 0], s[:, 1], s[:, 2], s[:, 3]
        p = self.parameters
        total_mass, polemass_length = self._total_mass, self._polemass_length
        force = np.where(actions == 1, p["force_mag"], -p["force_mag"])
        costheta = np.cos(theta)
        sintheta = np.sin(theta)
        # Same expression order as Gymnasium so the float64 results are bit-identical.
        temp = (force + polemass_length * np.square(theta_dot) * sintheta) / total_mass
        thetaacc = (p["gravity"] * sintheta - costheta * temp) / (
            p["length"] * (4.0 / 3.0 - p["masspole"] * np.square(costheta) / total_mass)
        )
        xacc = temp - polemass_length * thetaacc * costheta / total_mass
        new = np.empty_like(s)
        new[:, 0] = x + _TAU * x_dot
        new[:, 1] = x_dot + _TAU * xacc
        new[:, 2] = theta + _TAU * theta_dot
        new[:, 3] = theta_dot + _TAU * thetaacc
        self._state = new

        terminated = (
            (new[:, 0] < -_X_THRESHOLD)
            | (new[:, 0] > _X_THRESHOLD)
            | (new[:, 2] < -_THETA_THRESHOLD)
            | (new[:, 2] > _THETA_THRESHOLD)
        )
        self._elapsed += 1
        truncated = self._elapsed >= self.max_episode_steps
        reward = np.ones(self.num_envs, dtype=np.float32)
        next_obs = new[:, self._observed].astype(np.float32)

        ended = terminated | truncated
        self._ep_return += 1.0
        self._ep_length += 1
        episode_returns = np.where(ended, self._ep_return, np.nan)
        episode_lengths = np.where(ended, self._ep_length, 0)
        if ended.any():
            idx = np.flatnonzero(ended)
            if self.randomize:  # new physics for the new episodes (the wrapper draws at reset)
                self._draw(idx.tolist())
            for i in idx.tolist():  # only the envs whose episode ended draw a new start
                new[i] = self._rngs[i].uniform(low=-0.05, high=0.05, size=(4,))
            self._elapsed[idx] = 0
            self._ep_return[idx] = 0.0
            self._ep_length[idx] = 0
            obs = new[:, self._observed].astype(np.float32)
        else:
            obs = next_obs
        return StepResult(
            obs=obs,
            next_obs=next_obs,
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            episode_returns=episode_returns,
            episode_lengths=episode_lengths,
        )

    def close(self) -> None:
        """Nothing to release; idempotent like :meth:`BatchedEnv.close`."""
        self._closed = True
