"""The SB3 side of ``rlfleet bench pendulum``: its ``--child`` process trains TD3 or SAC with the
RL Zoo's Pendulum-v1 hyperparameters (:mod:`.protocol`), evaluating greedily every 1000 env
steps until the solve, the cap or the Zoo's step budget
(:func:`benchmarks.cartpole.sb3_child.train_until_solved`). Importing it needs neither torch nor
stable-baselines3."""

from __future__ import annotations

from typing import Any

from benchmarks.cartpole.records import SolveTracker
from benchmarks.cartpole.sb3_child import train_until_solved
from benchmarks.pendulum.protocol import (
    ENV_ID,
    SB3_EVAL_EVERY,
    SB3_TORCH_THREADS,
    SOLVE_CONSECUTIVE,
    SOLVE_THRESHOLD,
    ZOO_SAC,
    ZOO_TD3,
)


def _sb3_model(impl: str, seed: int) -> tuple[Any, int]:
    """The zoo-configured SB3 model and its training budget in env steps."""
    import numpy as np
    from stable_baselines3 import SAC, TD3
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.noise import NormalActionNoise

    env = make_vec_env(ENV_ID, n_envs=1, seed=seed)
    if impl == "sb3-td3":
        h = ZOO_TD3
        n_actions = env.action_space.shape[0]
        model = TD3(
            "MlpPolicy",
            env,
            gamma=h["gamma"],
            buffer_size=h["buffer_size"],
            learning_starts=h["learning_starts"],
            action_noise=NormalActionNoise(
                np.zeros(n_actions), h["noise_std"] * np.ones(n_actions)
            ),
            gradient_steps=h["gradient_steps"],
            train_freq=tuple(h["train_freq"]),
            learning_rate=h["learning_rate"],
            policy_kwargs={"net_arch": list(h["net_arch"])},
            seed=seed,
            device="cpu",
            verbose=0,
        )
        return model, h["n_timesteps"]
    h = ZOO_SAC
    model = SAC(
        "MlpPolicy", env, learning_rate=h["learning_rate"], seed=seed, device="cpu", verbose=0
    )
    return model, h["n_timesteps"]


def run_child(impl: str, seed: int, cap_s: float, launch_unix: float) -> dict[str, Any]:
    """Train one SB3 run until solved, the cap (from launch) or the zoo budget; report as a dict."""
    import torch

    torch.set_num_threads(SB3_TORCH_THREADS)
    model, budget = _sb3_model(impl, seed)
    tracker = SolveTracker(SOLVE_THRESHOLD, SOLVE_CONSECUTIVE)
    every = SB3_EVAL_EVERY[impl]
    return train_until_solved(impl, model, budget, seed, cap_s, launch_unix, ENV_ID, every, tracker)
