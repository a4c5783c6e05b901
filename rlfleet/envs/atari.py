"""Atari ``ALE/<Game>-v5`` with the standard DQN preprocessing (needs the extra ``rlfleet[atari]``).

The stack, innermost first:

1. ``gymnasium.make("ALE/<Game>-v5", frameskip=1, ...)`` - the emulator does no skipping itself so
   that step 2 can max-pool the last two frames. ``repeat_action_probability`` keeps the v5
   default of **0.25** (sticky actions, Machado et al. 2018); pass
   ``env_kwargs={"repeat_action_probability": 0.0}`` for the deterministic 2015 DQN protocol.
   ``max_num_frames_per_episode`` keeps the v5 default of 108,000 frames (30 minutes), reported as
   truncation.
2. ``AtariPreprocessing``: up to 30 no-op actions at reset, frame skip 4 with max-pooling over the
   last two frames, grayscale, 84x84, uint8.
3. Training only: :class:`EpisodicLife` (a lost life is ``terminated`` for learning, but the game
   continues on the next reset) and :class:`ClipRewardSign` (reward -> sign(reward)). Both leave
   the raw score visible to :class:`~rlfleet.envs.vector.BatchedEnv` through ``info`` so episode
   returns are whole-game, unclipped scores.
4. ``FrameStackObservation(4)``: observations are uint8 ``[4, 84, 84]``, channel-first.

Evaluation (``training=False``) skips step 3: full games, raw rewards.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from rlfleet.errors import EnvError

__all__ = ["ClipRewardSign", "EpisodicLife", "atari_available", "make_atari_env", "register_ale"]

_INSTALL_HINT = "install the Atari extra: pip install 'rlfleet[atari]' (ale-py ships the ROMs)"


def atari_available() -> bool:
    """True if ale-py imports (its Gymnasium ids can then be registered)."""
    try:
        import ale_py  # noqa: F401
    except Exception:  # a broken install is as unavailable as a missing one
        return False
    return True


def register_ale() -> bool:
    """Register the ``ALE/*`` ids with Gymnasium if ale-py is installed; True on success."""
    if not atari_available():
        return False
    import ale_py

    gym.register_envs(ale_py)
    return True


class EpisodicLife(gym.Wrapper):
    """A lost life ends the episode for learning; the game itself continues.

    ``info["game_over"]`` says whether the underlying game really ended. :meth:`reset` after a
    lost life takes one no-op step instead of restarting the game, so the agent still learns from
    the later lives (the DQN paper's protocol; Gymnasium's own ``terminal_on_life_loss`` restarts
    the whole game instead). The reward of that one no-op step is not reported (Atari games
    practically never score in the frames right after a lost life).
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._lives = 0
        self._game_over = True

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._game_over = bool(terminated or truncated)
        lives = int(info.get("lives", self._lives))
        if 0 < lives < self._lives:
            terminated = True
        self._lives = lives
        info["game_over"] = self._game_over
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        if self._game_over or kwargs.get("seed") is not None:
            obs, info = self.env.reset(**kwargs)
        else:
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        self._game_over = False
        self._lives = int(info.get("lives", 0))
        return obs, info


class ClipRewardSign(gym.Wrapper):
    """reward -> sign(reward); the raw reward stays in ``info["raw_reward"]``."""

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["raw_reward"] = float(reward)
        return obs, float(np.sign(reward)), terminated, truncated, info


def make_atari_env(
    env_id: str,
    *,
    training: bool = True,
    max_episode_steps: int | None = None,
    env_kwargs: dict | None = None,
) -> gym.Env:
    """One preprocessed Atari environment (see the module docstring for the stack).

    Raises:
        EnvError: ale-py is missing or broken, or the game id is unknown to it.
    """
    if not register_ale():
        raise EnvError(
            f"{env_id} needs ale-py, which is not installed or fails to import; {_INSTALL_HINT}"
        )
    kwargs = dict(env_kwargs or {})
    for fixed in ("frameskip",):
        if fixed in kwargs:
            raise EnvError(
                f"env_kwargs[{fixed!r}]={kwargs[fixed]!r} is not allowed for {env_id}: the DQN "
                "preprocessing skips 4 frames itself (the emulator runs with frameskip=1)"
            )
    try:
        env = gym.make(env_id, frameskip=1, **kwargs)
    except gym.error.Error as exc:
        raise EnvError(f"cannot make {env_id}: {exc}") from exc
    try:
        env = gym.wrappers.AtariPreprocessing(
            env,
            noop_max=30,
            frame_skip=4,
            screen_size=84,
            terminal_on_life_loss=False,
            grayscale_obs=True,
            scale_obs=False,
        )
    except gym.error.DependencyNotInstalled as exc:  # opencv for the 84x84 resize
        env.close()
        raise EnvError(f"{env_id} preprocessing needs opencv; {_INSTALL_HINT} ({exc})") from exc
    if training:
        env = EpisodicLife(env)
        env = ClipRewardSign(env)
    env = gym.wrappers.FrameStackObservation(env, stack_size=4)
    if max_episode_steps is not None:
        env = gym.wrappers.TimeLimit(env, max_episode_steps=int(max_episode_steps))
    return env
