"""The SB3 side of ``rlfleet bench cartpole``: its ``--child`` process trains DQN or PPO with the
RL Zoo's CartPole-v1 hyperparameters, evaluating greedily inside the training process until the
solve, the cap or the Zoo's step budget (:func:`train_until_solved`, which the Pendulum benchmark's
child shares). Importing it needs neither torch nor stable-baselines3."""

from __future__ import annotations

import time
from typing import Any

from benchmarks.cartpole.protocol import (
    ENV_ID,
    EVAL_EPISODES,
    SB3_EVAL_EVERY,
    SB3_TORCH_THREADS,
    ZOO_DQN,
    ZOO_PPO,
)
from benchmarks.cartpole.records import SolveTracker
from benchmarks.sb3_peers import linear_schedule


def _sb3_model(impl: str, seed: int) -> tuple[Any, int]:
    """The zoo-configured SB3 model and its training budget in env steps."""
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.env_util import make_vec_env

    if impl == "sb3-dqn":
        h = ZOO_DQN
        model = DQN(
            "MlpPolicy",
            make_vec_env(ENV_ID, n_envs=1, seed=seed),
            learning_rate=h["learning_rate"],
            batch_size=h["batch_size"],
            buffer_size=h["buffer_size"],
            learning_starts=h["learning_starts"],
            gamma=h["gamma"],
            target_update_interval=h["target_update_interval"],
            train_freq=h["train_freq"],
            gradient_steps=h["gradient_steps"],
            exploration_fraction=h["exploration_fraction"],
            exploration_final_eps=h["exploration_final_eps"],
            policy_kwargs={"net_arch": list(h["net_arch"])},
            seed=seed,
            device="cpu",
            verbose=0,
        )
        return model, h["n_timesteps"]
    h = ZOO_PPO
    model = PPO(
        "MlpPolicy",
        make_vec_env(ENV_ID, n_envs=h["n_envs"], seed=seed),
        n_steps=h["n_steps"],
        batch_size=h["batch_size"],
        gae_lambda=h["gae_lambda"],
        gamma=h["gamma"],
        n_epochs=h["n_epochs"],
        ent_coef=h["ent_coef"],
        learning_rate=linear_schedule(0.001),
        clip_range=linear_schedule(0.2),
        seed=seed,
        device="cpu",
        verbose=0,
    )
    return model, h["n_timesteps"]


def greedy_eval(model: Any, venv: Any, seed: int) -> float:
    """Mean return of one greedy episode per env of ``venv`` (batched deterministic predict)."""
    import numpy as np

    obs, _ = venv.reset(seed=seed)
    n = venv.num_envs
    returns = np.zeros(n)
    done = np.zeros(n, dtype=bool)
    while not done.all():
        actions, _ = model.predict(obs, deterministic=True)
        obs, reward, term, trunc, _ = venv.step(actions)
        returns += np.where(done, 0.0, reward)
        done |= term | trunc
    return float(returns.mean())


def run_child(impl: str, seed: int, cap_s: float, launch_unix: float) -> dict[str, Any]:
    """Train one SB3 run until solved, the cap (from launch) or the zoo budget; report as a dict."""
    import torch

    torch.set_num_threads(SB3_TORCH_THREADS)
    model, budget = _sb3_model(impl, seed)
    return train_until_solved(
        impl, model, budget, seed, cap_s, launch_unix, ENV_ID, SB3_EVAL_EVERY[impl], SolveTracker()
    )


def train_until_solved(
    impl: str,
    model: Any,
    budget: int,
    seed: int,
    cap_s: float,
    launch_unix: float,
    env_id: str,
    every: int,
    tracker: SolveTracker,
) -> dict[str, Any]:
    """Train ``model`` for up to ``budget`` env steps, evaluating ``EVAL_EPISODES`` greedy
    episodes of ``env_id`` every ``every`` env steps, until ``tracker`` says solved or the cap
    (from launch) passes; the child's report as a dict (the Pendulum benchmark's too)."""
    import gymnasium as gym
    import stable_baselines3
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    class SolveCallback(BaseCallback):
        """Evaluates every ``every`` env steps; stops training at the solve or the cap."""

        def __init__(self) -> None:
            super().__init__()
            self.tracker = tracker
            self.next_eval = every
            self.eval_s = 0.0
            self.venv: Any = None
            self.curve: list[dict[str, float]] = []
            self.solved_at_unix: float | None = None
            self.steps_at_solve: int | None = None
            self.stop_reason = ""

        def _on_step(self) -> bool:
            if time.time() - launch_unix >= cap_s:
                self.stop_reason = "time cap"
                return False
            if self.num_timesteps < self.next_eval:
                return True
            self.next_eval += every
            t0 = time.time()
            if self.venv is None:
                self.venv = gym.vector.SyncVectorEnv(
                    [lambda: gym.make(env_id) for _ in range(EVAL_EPISODES)]
                )
            mean = greedy_eval(
                self.model, self.venv, seed=10_000 * (seed + 1) + 100 * len(self.curve)
            )
            t1 = time.time()
            self.eval_s += t1 - t0
            self.curve.append(
                {
                    "wall_s": round(t1 - launch_unix, 3),
                    "env_steps": int(self.num_timesteps),
                    "return_mean": mean,
                    "eval_s": round(t1 - t0, 3),
                }
            )
            if self.tracker.update(mean):
                self.solved_at_unix = t1
                self.steps_at_solve = int(self.num_timesteps)
                self.stop_reason = "solved"
                return False
            return True

    cb = SolveCallback()
    model.learn(total_timesteps=budget, callback=cb)
    if cb.venv is not None:
        cb.venv.close()
    return {
        "impl": impl,
        "seed": seed,
        "solved_at_unix": cb.solved_at_unix,
        "env_steps_to_solve": cb.steps_at_solve,
        "evaluations": len(cb.curve),
        "eval_s": round(cb.eval_s, 3),
        "curve": cb.curve,
        "stop_reason": cb.stop_reason or "zoo step budget",
        "env_steps": int(model.num_timesteps),
        "torch_threads": torch.get_num_threads(),
        "sb3_version": stable_baselines3.__version__,
    }
