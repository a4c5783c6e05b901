"""The protocol of ``rlfleet bench pendulum``: implementations, the solve criterion, the
settings every rlfleet run is given, the SB3 children's evaluation settings and the peers' RL
Zoo hyperparameters."""

from __future__ import annotations

from typing import Any

from benchmarks.side_by_side import protocol_keys, solve_settings

IMPLS = ("rlfleet", "sb3-td3", "sb3-sac")
DEFAULT_PRESETS = ("dpg-pendulum", "ppo-pendulum")
ENV_ID = "Pendulum-v1"
SOLVE_THRESHOLD = -200.0
SOLVE_CONSECUTIVE = 2
EVAL_EPISODES = 20
#: SB3 children evaluate every this many env steps (5 episodes of 200 steps).
SB3_EVAL_EVERY = {"sb3-td3": 1000, "sb3-sac": 1000}
SB3_TORCH_THREADS = 1
#: rlfleet settings the benchmark owns (passed on every run, refused as --set).
PROTOCOL_SETTINGS = {
    **solve_settings(ENV_ID, EVAL_EPISODES, SOLVE_THRESHOLD, SOLVE_CONSECUTIVE),
    "env.randomize": "{}",
    "eval.randomize": "{}",
}
PROTOCOL_KEYS = protocol_keys(PROTOCOL_SETTINGS)

# Tuned Pendulum-v1 hyperparameters of the RL Zoo (DLR-RM/rl-baselines3-zoo, hyperparams/td3.yml
# and hyperparams/sac.yml, as published with the sb3/td3-Pendulum-v1 and sb3/sac-Pendulum-v1
# models). Keys not listed are SB3's defaults (SAC: batch 256, buffer 1e6, tau 0.005, gamma 0.99,
# automatic entropy, learning_starts 100, [256, 256]; TD3: batch 256, tau 0.005, policy delay 2,
# target noise 0.2 clipped at 0.5). Both train for the Zoo's 20,000 steps at most ("zoo step
# budget" when unsolved then).
ZOO_TD3: dict[str, Any] = {
    "n_timesteps": 20_000,
    "gamma": 0.98,
    "buffer_size": 200_000,
    "learning_starts": 10_000,
    "noise_type": "normal",
    "noise_std": 0.1,
    "gradient_steps": -1,
    "train_freq": [1, "episode"],
    "learning_rate": 1e-3,
    "net_arch": [400, 300],
}
ZOO_SAC: dict[str, Any] = {
    "n_timesteps": 20_000,
    "learning_rate": 1e-3,
}
