"""MinAtar games as Gymnasium environments with channel-first uint8 observations.

The ``minatar`` package ships its own Gymnasium wrapper, but it returns channel-LAST boolean
``[10, 10, C]`` arrays and only registers its ids when asked. This module wraps
``minatar.Environment`` directly:

* observations are **uint8 [C, 10, 10] with values 0 and 255**: channel-first as PyTorch convs
  expect, one byte per cell for compact replay, and 255 so the networks' uniform ``uint8 / 255``
  input scaling gives exactly 0.0 / 1.0;
* ``MinAtar/<Game>-v1`` uses the game's minimal action set, ``-v0`` all 6 actions (the ids of
  ``minatar.gym``);
* sticky actions with probability 0.1 and difficulty ramping stay on (the MinAtar paper's
  defaults); pass ``sticky_action_prob`` / ``difficulty_ramping`` in ``env_kwargs`` to change them.
"""

from __future__ import annotations

import logging
from typing import Any

import gymnasium as gym
import numpy as np

from rlfleet.errors import EnvError

__all__ = ["MINATAR_GAMES", "MinAtarEnv", "minatar_available", "minatar_ids", "register_minatar"]

#: game module name -> id stem
MINATAR_GAMES = {
    "asterix": "Asterix",
    "breakout": "Breakout",
    "freeway": "Freeway",
    "seaquest": "Seaquest",
    "space_invaders": "SpaceInvaders",
}


def minatar_ids() -> list[str]:
    """All MinAtar ids rlfleet understands, e.g. ``MinAtar/Breakout-v1``."""
    return [f"MinAtar/{stem}-v{v}" for stem in MINATAR_GAMES.values() for v in (0, 1)]


def parse_minatar_id(env_id: str) -> tuple[str, bool] | None:
    """``MinAtar/Breakout-v1`` -> ("breakout", minimal_action_set=True); None if not MinAtar."""
    for game, stem in MINATAR_GAMES.items():
        if env_id == f"MinAtar/{stem}-v1":
            return game, True
        if env_id == f"MinAtar/{stem}-v0":
            return game, False
    return None


def _import_environment() -> type:
    # minatar warns through the ROOT logger when seaborn is missing; logging.warning() on a
    # handler-less root would call basicConfig() and hijack the application's logging. A
    # temporary NullHandler keeps the import free of that side effect.
    root = logging.getLogger()
    guard = logging.NullHandler()
    root.addHandler(guard)
    try:
        from minatar.environment import Environment
    except ImportError as exc:
        raise EnvError(
            "MinAtar games need the minatar package: pip install 'rlfleet[minatar]'"
        ) from exc
    finally:
        root.removeHandler(guard)
    return Environment


def minatar_available() -> bool:
    """True if the minatar package imports."""
    try:
        _import_environment()
    except EnvError:
        return False
    return True


class MinAtarEnv(gym.Env):
    """One MinAtar game; observations uint8 [C, 10, 10] in {0, 255}.

    Args:
        game: module name, one of :data:`MINATAR_GAMES` (e.g. ``"breakout"``).
        use_minimal_action_set: act in the game's minimal action set (v1 ids) or all 6 (v0).
        sticky_action_prob: probability of repeating the previous action (paper: 0.1).
        difficulty_ramping: whether games speed up over time (paper: True).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        game: str,
        use_minimal_action_set: bool = True,
        sticky_action_prob: float = 0.1,
        difficulty_ramping: bool = True,
    ) -> None:
        if game not in MINATAR_GAMES:
            raise EnvError(f"unknown MinAtar game {game!r}; valid: {sorted(MINATAR_GAMES)}")
        environment = _import_environment()
        self.game = environment(
            env_name=game,
            sticky_action_prob=sticky_action_prob,
            difficulty_ramping=difficulty_ramping,
        )
        if use_minimal_action_set:
            self._action_set = np.asarray(self.game.minimal_action_set(), dtype=np.int64)
        else:
            self._action_set = np.arange(self.game.num_actions(), dtype=np.int64)
        h, w, c = self.game.state_shape()
        self.action_space = gym.spaces.Discrete(len(self._action_set))
        self.observation_space = gym.spaces.Box(0, 255, shape=(c, h, w), dtype=np.uint8)

    def _obs(self) -> np.ndarray:
        # bool [H, W, C] -> uint8 [C, H, W] in {0, 255}
        return np.ascontiguousarray(self.game.state().transpose(2, 0, 1), dtype=np.uint8) * 255

    def reset(
        self, *, seed: int | None = None, options: dict | None = None
    ) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self.game.seed(seed)
        self.game.reset()
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        reward, done = self.game.act(int(self._action_set[int(action)]))
        return self._obs(), float(reward), bool(done), False, {}


def register_minatar() -> None:
    """Register the MinAtar ids with Gymnasium (pointing at :class:`MinAtarEnv`) if absent.

    Ids already registered by someone else (e.g. ``minatar.gym.register_envs``) are left alone;
    :func:`rlfleet.envs.make_vector_env` builds :class:`MinAtarEnv` directly either way.
    """
    for env_id in minatar_ids():
        if env_id in gym.registry:
            continue
        game, minimal = parse_minatar_id(env_id)  # type: ignore[misc]
        gym.register(
            id=env_id,
            entry_point="rlfleet.envs.minatar:MinAtarEnv",
            kwargs={"game": game, "use_minimal_action_set": minimal},
        )
