"""The protocol of ``rlfleet bench minatar``: the implementations, budgets, checkpoints and
evaluation settings, the settings every rlfleet run is given, and the SB3 peer's hyperparameters
(the package docstring describes it in words)."""

from __future__ import annotations

import os
from typing import Any

#: implementation -> the rlfleet preset it trains (None: a peer in a --child process)
IMPLS: dict[str, str | None] = {
    "rlfleet-impala": "impala-minatar-breakout",
    "rlfleet-apex": "minatar-breakout",
    "sb3-ppo": None,
}
DEFAULT_IMPLS = ("rlfleet-impala", "sb3-ppo")
DEFAULT_GAME = "breakout"
DEFAULT_BUDGET_MIN = 30.0
DEFAULT_CHECKPOINTS_MIN = (10.0, 30.0)
#: --quick: 1-minute budget, checkpoints at 0.5 and 1 minute, an evaluation every 10 s
QUICK_BUDGET_MIN = 1.0
QUICK_CHECKPOINTS_MIN = (0.5, 1.0)
QUICK_EVAL_INTERVAL_S = 10.0
#: the impala-minatar-breakout preset's evaluation settings, owned here by the protocol
EVAL_EPISODES = 10
FINAL_EPISODES = 30
EVAL_MAX_EPISODE_STEPS = 10_000
EVAL_INTERVAL_S = 60.0
#: rlfleet's launcher seeds the evaluator with run.seed + 77; the final evaluation adds 10_000
#: (rlfleet/fleet/launcher.py, rlfleet/agents/common/evaluator.py)
EVAL_SEED_OFFSET = 77
FINAL_EVAL_SEED_OFFSET = 10_000
#: Extra seconds a run may take after the budget to shut down, evaluate and write its results.
GRACE_S = 300.0

# PPO for SB3. The RL Zoo (DLR-RM/rl-baselines3-zoo, hyperparams/ppo.yml, commit 208b6fd) has no
# MinAtar entry, so this is its `atari` entry: n_envs 8, n_steps 128, n_epochs 4, batch_size 256,
# learning_rate lin_2.5e-4, clip_range lin_0.1, vf_coef 0.5, ent_coef 0.01, n_timesteps 1e7
# (gamma 0.99, gae_lambda 0.95, max_grad_norm 0.5: SB3's defaults, which the entry keeps).
# "lin_X" = X * progress_remaining over n_timesteps, so the child trains with that step budget
# and the wall-clock budget stops it long before. Left out of the entry, since MinAtar needs
# neither: AtariWrapper (84x84 grey frames, frame skip, life loss) and frame_stack 4 (MinAtar's
# channels already carry motion trails; rlfleet does not stack either). Its CnnPolicy's NatureCNN
# needs >= 36x36 inputs, so the policy is the MinAtar paper's network (Young & Tian 2019, the same
# as rlfleet's "minatar" torso): Conv(C->16, 3x3, stride 1) + ReLU, Linear(-> 128) + ReLU, then
# linear policy and value heads on the shared features (net_arch=[], as the Zoo's CnnPolicy).
ZOO_PPO: dict[str, Any] = {
    "source": "rl-baselines3-zoo hyperparams/ppo.yml `atari` (no MinAtar entry)",
    "n_timesteps": 10_000_000,
    "n_envs": 8,
    "n_steps": 128,
    "n_epochs": 4,
    "batch_size": 256,
    "learning_rate": "lin_2.5e-4",
    "clip_range": "lin_0.1",
    "vf_coef": 0.5,
    "ent_coef": 0.01,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "max_grad_norm": 0.5,
    "policy": "MinAtar CNN (conv 16 3x3 + fc 128), net_arch=[], shared features",
}


def game_env_id(game: str) -> str:
    """``breakout`` -> ``MinAtar/Breakout-v1`` (the minimal action set, as the presets use)."""
    from rlfleet.envs.minatar import MINATAR_GAMES

    if game not in MINATAR_GAMES:
        raise ValueError(f"unknown MinAtar game {game!r}; valid: {', '.join(MINATAR_GAMES)}")
    return f"MinAtar/{MINATAR_GAMES[game]}-v1"


def usable_cpus() -> int:
    """CPUs this process may run on (what torch gets in a single-process run)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def rlfleet_settings(
    game: str,
    seed: int,
    budget_s: float,
    eval_interval_s: float,
    eval_episodes: int,
    final_episodes: int,
) -> dict[str, str]:
    """The ``--set`` values the protocol passes to every rlfleet run (refused as overrides)."""
    return {
        "env.id": game_env_id(game),
        "run.seed": str(seed),
        "run.max_seconds": repr(float(budget_s)),
        "run.total_env_steps": "0",
        "run.stop_on_solve": "false",
        "eval.episodes": str(eval_episodes),
        "eval.final_episodes": str(final_episodes),
        "eval.epsilon": "0.0",
        "eval.max_episode_steps": str(EVAL_MAX_EPISODE_STEPS),
        "eval.interval_s": repr(float(eval_interval_s)),
        "eval.video": "false",
    }


PROTOCOL_KEYS = tuple(rlfleet_settings(DEFAULT_GAME, 0, 1.0, 1.0, 1, 1))
