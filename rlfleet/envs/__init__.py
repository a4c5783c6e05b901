"""rlfleet.envs: environment construction from an id, wrappers and batched stepping.

    from rlfleet.envs import make_vector_env
    venv = make_vector_env("CartPole-v1", num_envs=8, seed=0)
    obs = venv.reset()
    r = venv.step(actions)   # r.obs, r.next_obs, r.reward, r.terminated, r.truncated, ...

Ids: any Gymnasium id, ``MinAtar/<Game>-v0|v1`` (uint8 [C, 10, 10]), ``ALE/<Game>-v5`` (DQN
preprocessing, uint8 [4, 84, 84]; needs ``rlfleet[atari]``), and the netsim ids once that
sub-package registers them (done lazily by make_vector_env / known_env_ids).
"""

from __future__ import annotations

from rlfleet.envs.make import check_discrete, known_env_ids, make_env, make_vector_env
from rlfleet.envs.vector import BatchedEnv, StepResult

__all__ = [
    "BatchedEnv",
    "StepResult",
    "check_discrete",
    "known_env_ids",
    "make_env",
    "make_vector_env",
]
