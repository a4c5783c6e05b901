"""What IMPALA actors send: one unroll per message (:mod:`rlfleet.agents.impala.unrolls`), and
the learner's check of each one at its boundary.

A malformed or foreign unroll is counted and dropped by the learner, never raised: every array's
dtype and shape, finite rewards and logits, discounts in [0, 1], actions inside the action space
and consistent truncation records are checked, vectorised (no per-step Python loop).
"""

from __future__ import annotations

import numpy as np

from rlfleet.agents.common.trajectories import layout_problem, tail_problem, truncation_problem
from rlfleet.agents.impala.unrolls import CORE_STATE_KEY, unroll_keys
from rlfleet.transport.codec import encode

#: Message kind of an unroll on the wire (the learner accepts nothing else).
UNROLL_KIND = "unroll"


def encode_unroll(unroll: dict[str, np.ndarray], actor: int | str) -> bytes:
    """One unroll as a codec message; ``env_steps`` in the metadata is T * K."""
    version = int(unroll["policy_version"])
    arrays = {**unroll, "policy_version": np.array(version, dtype=np.int64)}
    meta = {"actor": actor, "policy_version": version, "env_steps": int(unroll["action"].size)}
    return encode(UNROLL_KIND, arrays, meta)


_STEP_SHAPED = {"reward": "float32", "discount": "float32", "done": "bool", "truncated": "bool"}


def unroll_problem(
    arrays: dict[str, np.ndarray],
    unroll_length: int,
    obs_shape: tuple[int, ...],
    obs_dtype: np.dtype,
    num_actions: int,
    core_size: int = 0,
    action_dim: int = 0,
) -> str:
    """Why ``arrays`` (an unroll as it arrives) is not an unroll this learner can use, or "" (vectorised checks, no per-step Python loop).
    ``core_size`` is the learner's LSTM width (0: feed-forward, and no core state expected);
    ``action_dim`` is D of Box actions (0: Discrete actions, ``num_actions`` of them)."""
    keys = unroll_keys(bool(action_dim))
    missing = [key for key in keys if key not in arrays]
    if missing:
        return f"missing arrays {missing}; an unroll has {list(keys)}"
    if core_size and CORE_STATE_KEY not in arrays:
        return f"no {CORE_STATE_KEY}: the learner's network has an LSTM core of size {core_size}"
    if not core_size and CORE_STATE_KEY in arrays:
        return f"unexpected {CORE_STATE_KEY}: the learner's network has no LSTM core"
    t, obs_shape = unroll_length, tuple(obs_shape)
    problem = layout_problem(arrays, t, obs_shape, obs_dtype, _STEP_SHAPED)
    if problem:
        return problem
    k = arrays["obs"].shape[1]
    action = arrays["action"]
    if action_dim:
        want, behaviour, shape = (t, k, action_dim), "behaviour_log_prob", (t, k)
        action_type = "float32"
    else:
        want, behaviour, shape = (t, k), "behaviour_logits", (t, k, num_actions)
        action_type = "int64"
    if action.dtype.name != action_type or action.shape != want:
        return (
            f"action is {action.dtype.name}{list(action.shape)}, expected {action_type}{list(want)}"
        )
    logits = arrays[behaviour]
    if logits.dtype.name != "float32" or logits.shape != shape:
        return f"{behaviour} is {logits.dtype.name}{list(logits.shape)}, expected {list(shape)}"
    problem = tail_problem(arrays, obs_shape)
    if problem:
        return problem
    index = arrays["final_obs_index"]
    if core_size:
        state = arrays[CORE_STATE_KEY]
        if state.dtype.name != "float32" or state.shape != (2, k, core_size):
            return (
                f"{CORE_STATE_KEY} is {state.dtype.name}{list(state.shape)}, expected"
                f" float32[2, {k}, {core_size}]"
            )
        if not np.isfinite(state).all():
            return f"non-finite {CORE_STATE_KEY}"
    if not (np.isfinite(arrays["reward"]).all() and np.isfinite(logits).all()):
        return f"non-finite rewards or {behaviour}"
    discount = arrays["discount"]
    if not ((discount >= 0) & (discount <= 1)).all():
        return "discounts outside [0, 1]"
    if action_dim:
        if not np.isfinite(action).all():
            return "non-finite actions"
    elif ((action < 0) | (action >= num_actions)).any():
        return f"actions outside [0, {num_actions})"
    return truncation_problem(arrays, index, t, k, "unroll")
