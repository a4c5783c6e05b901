"""A small custom environment for rlfleet: walk a corridor to the end the observation points at.

The agent starts at a random cell of a corridor of ``length`` cells; the goal is one of the two
ends, drawn per episode and shown in the observation. Each step costs ``step_cost``; reaching the
goal pays 1 and ends the episode; after ``max_steps`` steps the episode is truncated. A random
policy mostly times out (return around -0.2); walking straight to the goal returns about 0.96.

Importing this module registers ``Corridor-v0``, so rlfleet can use it either way:

* ``env.id = "corridor:Corridor-v0"`` (Gymnasium's ``module:EnvId`` form), or
* ``env.entry_point = "corridor:Corridor"`` with ``env.id = "MyCorridor-v0"`` and ``env.kwargs``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

LEFT, RIGHT = 0, 1


class Corridor(gym.Env):
    """Observation ``[position in [-1, 1], goal side (-1 left, +1 right)]`` (float32);
    actions: 0 = left, 1 = right."""

    metadata = {"render_modes": []}

    def __init__(self, length: int = 10, max_steps: int = 40, step_cost: float = 0.01) -> None:
        if length < 3 or max_steps < 1:
            raise ValueError(f"need length >= 3 and max_steps >= 1, got {length}, {max_steps}")
        self.length, self.max_steps, self.step_cost = int(length), int(max_steps), float(step_cost)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.pos, self.goal, self.steps = 0, 0, 0

    def _obs(self) -> np.ndarray:
        position = 2.0 * self.pos / (self.length - 1) - 1.0
        side = -1.0 if self.goal == 0 else 1.0
        return np.array([position, side], dtype=np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.goal = 0 if self.np_random.random() < 0.5 else self.length - 1
        # start anywhere but on the goal
        self.pos = int(self.np_random.integers(1, self.length - 1))
        self.steps = 0
        return self._obs(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.pos = int(np.clip(self.pos + (1 if int(action) == RIGHT else -1), 0, self.length - 1))
        self.steps += 1
        terminated = self.pos == self.goal
        reward = 1.0 if terminated else -self.step_cost
        truncated = not terminated and self.steps >= self.max_steps
        return self._obs(), reward, terminated, truncated, {}


def make_corridor(**kwargs: Any) -> Corridor:
    """A factory, to show that ``env.entry_point`` may name a function as well as a class."""
    return Corridor(**kwargs)


gym.register(id="Corridor-v0", entry_point=Corridor)
