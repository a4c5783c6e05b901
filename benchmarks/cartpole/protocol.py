"""The protocol of ``rlfleet bench cartpole``: the implementations, the solve criterion, the
settings every rlfleet run is given, the SB3 children's evaluation settings and the peers' RL Zoo
hyperparameters (the package docstring describes it in words)."""

from __future__ import annotations

from typing import Any

from benchmarks.side_by_side import protocol_keys, solve_settings

IMPLS = ("rlfleet", "sb3-dqn", "sb3-ppo")
SOLVE_THRESHOLD = 475.0
SOLVE_CONSECUTIVE = 2
EVAL_EPISODES = 20
ENV_ID = "CartPole-v1"
#: SB3 children evaluate every this many env steps (rlfleet's evaluator runs every eval.interval_s).
SB3_EVAL_EVERY = {"sb3-dqn": 1000, "sb3-ppo": 2048}
#: Threads torch may use inside an SB3 child (set with torch.set_num_threads).
SB3_TORCH_THREADS = 1
#: rlfleet settings the benchmark owns: passed explicitly on every run (so a preset change
#: cannot alter the protocol) and refused as --set overrides.
PROTOCOL_SETTINGS = solve_settings(ENV_ID, EVAL_EPISODES, SOLVE_THRESHOLD, SOLVE_CONSECUTIVE)
PROTOCOL_KEYS = protocol_keys(PROTOCOL_SETTINGS)
#: Extra seconds a run may take after the cap to shut down and write its results.
GRACE_S = 120.0

# Tuned CartPole-v1 hyperparameters of the RL Zoo (DLR-RM/rl-baselines3-zoo, hyperparams/dqn.yml
# and hyperparams/ppo.yml, current master). dqn.yml labels its CartPole entry "Almost Tuned"
# (older zoo versions had lr 2.5e-4, batch 512, train_freq 16, ...). "lin_X" in the zoo means
# X * progress_remaining, where progress runs over n_timesteps: the schedules (PPO's lr and clip
# range, DQN's exploration_fraction) are defined over the zoo's n_timesteps, so the children
# train with that budget and a run that reaches it unsolved stops ("zoo step budget").
ZOO_DQN: dict[str, Any] = {
    "n_timesteps": 50_000,
    "learning_rate": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 1000,
    "gamma": 0.99,
    "target_update_interval": 10,
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_fraction": 0.16,
    "exploration_final_eps": 0.04,
    "net_arch": [256, 256],
}
ZOO_PPO: dict[str, Any] = {
    "n_timesteps": 100_000,
    "n_envs": 8,
    "n_steps": 32,
    "batch_size": 256,
    "gae_lambda": 0.8,
    "gamma": 0.98,
    "n_epochs": 20,
    "ent_coef": 0.0,
    "learning_rate": "lin_0.001",
    "clip_range": "lin_0.2",
}
