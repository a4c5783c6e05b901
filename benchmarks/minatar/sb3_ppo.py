"""The SB3 PPO side of ``rlfleet bench minatar``: its ``--child`` process trains PPO (the
Zoo's Atari hyperparameters, :data:`~benchmarks.minatar.protocol.ZOO_PPO`, with the MinAtar
paper's network) on rlfleet's environment, evaluating with rlfleet's evaluator at the
checkpoint minutes of its own clock. Importing it needs neither torch nor stable-baselines3."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from functools import cache
from typing import Any

import numpy as np

from benchmarks.minatar.protocol import (
    EVAL_EPISODES,
    EVAL_MAX_EPISODE_STEPS,
    EVAL_SEED_OFFSET,
    FINAL_EPISODES,
    FINAL_EVAL_SEED_OFFSET,
    ZOO_PPO,
    game_env_id,
    usable_cpus,
)
from benchmarks.minatar.records import Checkpoint, env_steps_rate, mean_and_std
from benchmarks.sb3_peers import linear_schedule


def scale_observation(obs: np.ndarray) -> np.ndarray:
    """uint8 {0, 255} -> float32 {0.0, 1.0}: the same arithmetic as rlfleet's networks."""
    return obs.astype(np.float32) * np.float32(1.0 / 255.0)


@cache
def _sb3_classes() -> tuple[type, type]:
    """(the float-observation wrapper, the MinAtar CNN feature extractor), built on first use so
    that importing this module needs neither torch nor stable-baselines3."""
    import gymnasium as gym
    import torch
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    from torch import nn

    class FloatObservation(gym.ObservationWrapper):
        """rlfleet's uint8 [C, 10, 10] in {0, 255} as float32 in {0.0, 1.0} (what SB3 expects)."""

        def __init__(self, env: gym.Env) -> None:
            super().__init__(env)
            shape = env.observation_space.shape
            self.observation_space = gym.spaces.Box(0.0, 1.0, shape=shape, dtype=np.float32)

        def observation(self, observation: np.ndarray) -> np.ndarray:
            return scale_observation(observation)

    class MinAtarCNN(BaseFeaturesExtractor):
        """The MinAtar paper's network: Conv(C->16, 3x3, stride 1) + ReLU, Linear(-> 128) + ReLU."""

        def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 128) -> None:
            super().__init__(observation_space, features_dim)
            c, h, w = observation_space.shape
            self.net = nn.Sequential(
                nn.Conv2d(c, 16, 3, stride=1),
                nn.ReLU(),
                nn.Flatten(),
                nn.Linear(16 * (h - 2) * (w - 2), features_dim),
                nn.ReLU(),
            )

        def forward(self, observations: torch.Tensor) -> torch.Tensor:
            return self.net(observations)

    return FloatObservation, MinAtarCNN


def make_sb3_vec_env(env_id: str, n_envs: int) -> Any:
    """SB3 DummyVecEnv of rlfleet's env (make_env) with float observations, under VecMonitor.

    Seeding is left to the model (``PPO(seed=s)`` seeds env i with ``s + i``, as rlfleet's
    BatchedEnv does).
    """
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

    from rlfleet.envs import make_env

    float_obs, _ = _sb3_classes()
    return VecMonitor(DummyVecEnv([lambda: float_obs(make_env(env_id)) for _ in range(n_envs)]))


class GreedySB3Policy:
    """An SB3 model behind the ``act(obs, epsilons)`` interface rlfleet's evaluator calls."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def act(self, obs: np.ndarray, epsilons: np.ndarray) -> np.ndarray:
        """Greedy (deterministic) actions for a batch of uint8 observations; epsilon must be 0."""
        if np.any(np.asarray(epsilons) > 0):
            raise ValueError("the benchmark evaluates greedily (epsilon 0)")
        actions, _ = self.model.predict(scale_observation(obs), deterministic=True)
        return np.asarray(actions, dtype=np.int64)


def sb3_ppo_model(env_id: str, seed: int) -> Any:
    """SB3 PPO with the Zoo's Atari hyperparameters and the MinAtar CNN (see ZOO_PPO)."""
    from stable_baselines3 import PPO

    _, cnn = _sb3_classes()
    h = ZOO_PPO
    return PPO(
        "CnnPolicy",
        make_sb3_vec_env(env_id, h["n_envs"]),
        n_steps=h["n_steps"],
        n_epochs=h["n_epochs"],
        batch_size=h["batch_size"],
        learning_rate=linear_schedule(2.5e-4),
        clip_range=linear_schedule(0.1),
        vf_coef=h["vf_coef"],
        ent_coef=h["ent_coef"],
        gamma=h["gamma"],
        gae_lambda=h["gae_lambda"],
        max_grad_norm=h["max_grad_norm"],
        policy_kwargs={
            "features_extractor_class": cnn,
            "features_extractor_kwargs": {"features_dim": 128},
            "net_arch": [],
            "normalize_images": False,
        },
        seed=seed,
        device="cpu",
        verbose=0,
    )


def run_child(
    impl: str,
    seed: int,
    game: str,
    budget_s: float,
    checkpoints_s: Sequence[float],
    launch_unix: float,
    eval_episodes: int = EVAL_EPISODES,
    final_episodes: int = FINAL_EPISODES,
    torch_threads: int | None = None,
) -> dict[str, Any]:
    """Train SB3 PPO until ``budget_s`` of its clock (launch -> now, minus its evaluations),
    evaluating at each checkpoint; then the final evaluation. Returns the report as a dict."""
    if impl != "sb3-ppo":
        raise ValueError(f"no --child implementation {impl!r}")
    import stable_baselines3
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    from rlfleet.agents.common.evaluator import evaluate

    torch.set_num_threads(torch_threads or usable_cpus())
    env_id = game_env_id(game)
    base = seed + EVAL_SEED_OFFSET
    marks = sorted(float(c) for c in checkpoints_s)

    def run_eval(model: Any, episodes: int, eval_seed: int) -> list[float]:
        returns, _, _ = evaluate(
            GreedySB3Policy(model), env_id, episodes, eval_seed, 0.0, EVAL_MAX_EPISODE_STEPS
        )
        return [float(r) for r in returns]

    class CheckpointCallback(BaseCallback):
        """At each checkpoint of the clock (excluding evaluations): evaluate; stop at the budget."""

        def __init__(self) -> None:
            super().__init__()
            self.eval_s = 0.0
            self.pending = list(marks)
            self.checkpoints: list[dict[str, Any]] = []
            self.evaluations: list[dict[str, float]] = []
            self.stop_reason = ""

        def clock(self) -> float:
            return time.time() - launch_unix - self.eval_s

        def _on_step(self) -> bool:
            now = self.clock()
            while self.pending and now >= self.pending[0]:
                mark = self.pending.pop(0)
                steps = int(self.num_timesteps)
                t0 = time.time()
                returns = run_eval(self.model, eval_episodes, base + len(self.evaluations))
                spent = time.time() - t0
                self.eval_s += spent
                mean, std = mean_and_std(returns)
                self.evaluations.append(
                    {
                        "wall_s": round(now, 3),
                        "env_steps": steps,
                        "return_mean": mean,
                        "return_std": std,
                        "eval_s": round(spent, 3),
                    }
                )
                cp = Checkpoint(
                    minute=mark / 60.0,
                    at_s=round(now, 3),
                    env_steps=steps,
                    env_steps_per_s=env_steps_rate(steps, now),
                    eval_return_mean=mean,
                    eval_return_std=std,
                    eval_episodes=eval_episodes,
                    eval_at_s=round(now, 3),
                    eval_env_steps=steps,
                )
                self.checkpoints.append(asdict(cp))
            if now >= budget_s:
                self.stop_reason = "time budget"
                return False
            return True

    model = sb3_ppo_model(env_id, seed)
    cb = CheckpointCallback()
    model.learn(total_timesteps=ZOO_PPO["n_timesteps"], callback=cb)
    end_at = cb.clock()
    t0 = time.time()
    final = run_eval(model, final_episodes, base + FINAL_EVAL_SEED_OFFSET)
    final_s = time.time() - t0
    model.get_env().close()
    return {
        "impl": impl,
        "seed": seed,
        "checkpoints": cb.checkpoints,
        "evaluations": cb.evaluations,
        "env_steps": int(model.num_timesteps),
        "end_at_s": round(end_at, 3),
        "final_returns": final,
        "final_eval_s": round(final_s, 3),
        "eval_s": round(cb.eval_s, 3),
        "stop_reason": cb.stop_reason or "zoo step budget",
        "torch_threads": torch.get_num_threads(),
        "n_envs": ZOO_PPO["n_envs"],
        "sb3_version": stable_baselines3.__version__,
    }
