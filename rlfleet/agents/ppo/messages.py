"""What PPO actors send: one rollout per message (:mod:`rlfleet.agents.common.trajectories`):
``obs`` [T+1, K, *obs], ``action`` [T, K] int64 (Discrete) or [T, K, D] float32 (the raw
Gaussian samples of a Box), ``log_prob`` [T, K] float32 (the behaviour policy's log-probability
of each action), ``reward``, ``discount``, ``done``, ``truncated``, ``final_obs`` and
``final_obs_index`` (time-limit bootstraps) and ``policy_version``; ``actor``,
``policy_version`` and ``env_steps`` (T * K) in the metadata.

Both transports check every rollout with :func:`message_check` before the learner sees it
(vectorised, no per-step loop); a malformed or foreign one is counted and dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rlfleet.agents.common.trajectories import layout_problem, tail_problem, truncation_problem
from rlfleet.envs.spec import EnvSpec
from rlfleet.transport.codec import Message, encode

ROLLOUT_KIND = "rollout"
#: The arrays of every rollout.
ROLLOUT_KEYS = (
    "obs",
    "action",
    "log_prob",
    "reward",
    "discount",
    "done",
    "truncated",
    "final_obs",
    "final_obs_index",
    "policy_version",
)
#: The time-major ones (stacked along the batch axis).
STEP_KEYS = ROLLOUT_KEYS[:7]


def encode_rollout(rollout: dict[str, np.ndarray], actor: int | str) -> bytes:
    """One rollout as a codec message."""
    version = int(rollout["policy_version"])
    meta = {"actor": actor, "policy_version": version, "env_steps": int(rollout["reward"].size)}
    return encode(ROLLOUT_KIND, rollout, meta)


def rollout_problem(
    arrays: dict[str, np.ndarray],
    length: int,
    env: EnvSpec,
) -> str:
    """Why ``arrays`` is not a rollout of ``length`` steps of ``env``, or ""."""
    missing = [key for key in ROLLOUT_KEYS if key not in arrays]
    if missing:
        return f"missing arrays {missing}; a rollout has {list(ROLLOUT_KEYS)}"
    obs, obs_shape = arrays["obs"], tuple(env.obs_shape)
    step_types = {"log_prob": "float32", "reward": "float32", "discount": "float32"}
    step_types.update(done="bool", truncated="bool")
    problem = layout_problem(arrays, length, obs_shape, env.obs_dtype, step_types)
    if problem:
        return problem
    t, k = length, obs.shape[1]
    action = arrays["action"]
    if env.discrete:
        want, dtype = (t, k), "int64"
    else:
        want, dtype = (t, k, env.action_dim), "float32"
    if action.dtype.name != dtype or action.shape != want:
        return f"action is {action.dtype.name}{list(action.shape)}, expected {dtype}{list(want)}"
    problem = tail_problem(arrays, obs_shape)
    if problem:
        return problem
    final_obs, index = arrays["final_obs"], arrays["final_obs_index"]
    finite = [arrays["reward"], arrays["log_prob"]] + ([] if env.discrete else [action])
    if obs.dtype.kind == "f":
        finite += [obs, final_obs]
    if not all(np.isfinite(a).all() for a in finite):
        return "non-finite rewards, log-probabilities, actions or observations"
    discount = arrays["discount"]
    if not ((discount >= 0) & (discount <= 1)).all():
        return "discounts outside [0, 1]"
    if env.discrete and ((action < 0) | (action >= env.num_actions)).any():
        return f"actions outside [0, {env.num_actions})"
    return truncation_problem(arrays, index, t, k, "rollout")


def message_check(config: Any, env: EnvSpec) -> Callable[[Message], str]:
    """The spec's ``message_check``: :func:`rollout_problem` for this run's rollouts."""
    length = config.algo.rollout_length

    def check(message: Message) -> str:
        return rollout_problem(message.arrays, length, env)

    return check
