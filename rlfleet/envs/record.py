"""Recording demonstrations: run a policy in an environment and keep its episodes.

Lives in the envs layer because it steps environments; the file format itself
(:mod:`rlfleet.replay.demos`) is numpy only and sits below.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from rlfleet.envs.make import make_env as default_make_env
from rlfleet.errors import ConfigError
from rlfleet.replay.demos.files import write_demos
from rlfleet.replay.demos.format import Demonstrations, make_demonstrations


def record_episodes(
    env_id: str,
    policy: Callable[[np.ndarray], int],
    episodes: int,
    seed: int,
    *,
    path: str | os.PathLike[str] | None = None,
    source: str = "unknown",
    max_episode_steps: int | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    make_env: Callable[..., Any] | None = None,
) -> Demonstrations:
    """Run ``policy`` greedily for ``episodes`` full episodes and return (and optionally write)
    them as :class:`Demonstrations`.

    Episode ``i`` is reset with seed ``seed + i`` (recorded in ``episode_seeds``), so a recording
    is reproducible for a deterministic policy. ``policy`` maps ONE observation to an action: a
    scripted ``module:function`` or a callable built from a checkpoint
    (``rlfleet.cli.policies.load_greedy_policy``); say which in ``source``.

    ``make_env(env_id, max_episode_steps=..., env_kwargs=...)`` builds the environment; default
    :func:`rlfleet.envs.make_env`.

    Raises:
        ConfigError: ``episodes`` < 1, a non-discrete action space, or an action the policy
            returns outside ``[0, n)`` (names the episode, step and valid range).
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ConfigError(f"episodes must be an integer >= 1, got {episodes!r}")
    if make_env is None:
        make_env = default_make_env
    env = make_env(env_id, max_episode_steps=max_episode_steps, env_kwargs=dict(env_kwargs or {}))
    try:
        n_actions = getattr(env.action_space, "n", None)
        if n_actions is None:
            raise ConfigError(
                f"{env_id}: demonstrations need a discrete action space, got {env.action_space}"
            )
        n_actions = int(n_actions)
        obs_l: list[np.ndarray] = []
        act_l: list[int] = []
        rew_l: list[float] = []
        term_l: list[bool] = []
        trunc_l: list[bool] = []
        ep_l: list[int] = []
        finals: list[np.ndarray] = []
        # Policies with memory (an LSTM core) have reset(): a new episode starts from zero state.
        reset_memory = getattr(policy, "reset", None)
        for ep in range(episodes):
            obs, _ = env.reset(seed=seed + ep)
            if callable(reset_memory):
                reset_memory()
            step = 0
            while True:
                action = policy(obs)
                a = int(action)
                if a != action or not 0 <= a < n_actions:
                    raise ConfigError(
                        f"policy returned action {action!r} in episode {ep} step {step}; "
                        f"valid: integers 0..{n_actions - 1}"
                    )
                next_obs, reward, terminated, truncated, _ = env.step(a)
                obs_l.append(np.asarray(obs))
                act_l.append(a)
                rew_l.append(float(reward))
                term_l.append(bool(terminated))
                trunc_l.append(bool(truncated))
                ep_l.append(ep)
                step += 1
                if terminated or truncated:
                    finals.append(np.asarray(next_obs))
                    break
                obs = next_obs
        dtype = np.dtype(env.observation_space.dtype)
        demos = make_demonstrations(
            env_id=env_id,
            observation_space=env.observation_space,
            num_actions=n_actions,
            obs=np.stack(obs_l).astype(dtype, copy=False),
            action=np.asarray(act_l, dtype=np.int64),
            reward=np.asarray(rew_l, dtype=np.float64),
            terminated=np.asarray(term_l, dtype=bool),
            truncated=np.asarray(trunc_l, dtype=bool),
            episode_id=np.asarray(ep_l, dtype=np.int64),
            final_obs=np.stack(finals).astype(dtype, copy=False),
            episode_seeds=[seed + i for i in range(episodes)],
            source=source,
            env_kwargs=env_kwargs,
        )
    finally:
        env.close()
    if path is not None:
        write_demos(path, demos)
    return demos
