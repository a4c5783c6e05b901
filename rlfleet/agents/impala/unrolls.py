"""IMPALA's unrolls: T steps of K environments, built by actors and stacked by the learner.

Unrolls are time-major and carry the last observation for bootstrapping.

An unroll (a plain ``dict`` of numpy arrays, so the codec can ship it without pickle) holds:

=================== ===================== ======================================================
key                 shape / dtype         meaning
=================== ===================== ======================================================
``obs``             [T+1, K, *obs] obs     ``obs[t]`` is what the policy acted on at step t;
                    dtype                  ``obs[T]`` is the bootstrap observation ``x_T``.
``action``          [T, K] int64           action taken at step t (Box actions: [T, K, D]
                                           float32, the raw Gaussian sample).
``reward``          [T, K] float32         reward of step t.
``discount``        [T, K] float32         ``gamma * (1 - terminated_t)``.
``done``            [T, K] bool            the episode ended at step t (terminated or truncated).
``truncated``       [T, K] bool            ended by a time limit and **not** terminated.
``behaviour_logits`` [T, K, A] float32     the actor's (mu) logits at ``obs[t]`` (Discrete).
``behaviour_log_prob`` [T, K] float32      Box actions instead: ``log mu(a_t|x_t)``, all that
                                           V-trace needs of the behaviour policy.
``final_obs``       [N, *obs] obs dtype    the true last observation of each truncated step.
``final_obs_index`` [N, 2] int64           its ``(t, k)``, row-major order of ``truncated``.
``policy_version``  [] int64               the oldest parameter version that acted in the unroll.
``core_state``      [2, K, H] float32      only with an LSTM core: ``h`` and ``c`` before
                                           ``obs[0]``, from which the learner reruns the core.
=================== ===================== ======================================================

With an LSTM core the actor zeroes an environment's state after a step that ended its episode, so
``core_state`` is already reset when ``obs[0]`` starts an episode, and inside the unroll the learner
zeroes the state before ``obs[t]`` wherever ``done[t-1]`` (see
:meth:`rlfleet.models.LSTMPolicyValueNetwork.unroll`).

Episode boundaries inside the unroll. Environments auto-reset, so after the last step of an episode
``obs[t+1]`` is the *reset* observation of the next episode. A **termination** needs nothing more:
``discount[t] = 0`` cuts both the V-trace sum and the bootstrap at t, so ``V(obs[t+1])`` of the
unrelated next episode is multiplied by zero.

A **truncation** (time limit) must bootstrap from the *true* final observation ``x_final``, which
is not ``obs[t+1]``. The unroll keeps ``discount[t] = gamma`` (the step is not terminal) and carries
``x_final`` sparsely in ``final_obs`` (truncations are rare: one per time limit, so storing a
dense ``[T, K]`` copy of next observations would double the traffic for nothing). The learner
(:class:`~rlfleet.agents.impala.update.ImpalaUpdate`) then rewrites that step as

    reward'[t] = reward[t] + gamma * V_learner(x_final)    (no gradient),   discount'[t] = 0

which is exact for V-trace: ``delta_t`` becomes ``rho_t (r_t + gamma V(x_final) - V(x_t))`` and the
trace stops at t, as it must, because the truncated episode has no later data (``v`` at
``x_final`` is just ``V(x_final)``). Using the learner's value rather than one the actor computed
keeps the bootstrap on-policy for the learner and the actor free of value computations. A step that
is both terminated and truncated counts as terminated.

The building and stacking are the shared :mod:`rlfleet.agents.common.trajectories`; this module
fixes IMPALA's per-step fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rlfleet.agents.common.trajectories import (
    CORE_STATE_KEY,
    TrajectoryBuilder,
    positive_int,
    stack_trajectories,
)

__all__ = [
    "CONTINUOUS_UNROLL_KEYS",
    "CORE_STATE_KEY",
    "UNROLL_KEYS",
    "UnrollBuilder",
    "stack_unrolls",
    "unroll_keys",
]

UNROLL_KEYS = (
    "obs",
    "action",
    "reward",
    "discount",
    "done",
    "truncated",
    "behaviour_logits",
    "final_obs",
    "final_obs_index",
    "policy_version",
)
"""The keys of every unroll (and of a batch made by :func:`stack_unrolls`), Discrete actions."""

CONTINUOUS_UNROLL_KEYS = tuple(
    "behaviour_log_prob" if key == "behaviour_logits" else key for key in UNROLL_KEYS
)
"""The keys of an unroll of Box actions: the behaviour log-probabilities replace the logits."""


def unroll_keys(continuous: bool) -> tuple[str, ...]:
    """:data:`CONTINUOUS_UNROLL_KEYS` or :data:`UNROLL_KEYS`."""
    return CONTINUOUS_UNROLL_KEYS if continuous else UNROLL_KEYS


def _time_major(keys: Sequence[str]) -> list[str]:
    return [k for k in keys if k not in ("final_obs", "final_obs_index", "policy_version")]


class UnrollBuilder(TrajectoryBuilder):
    """Collects T steps of K environments into time-major unrolls (see the module docstring).

    Buffers are preallocated per unroll and filled in place. A finished unroll's arrays are
    *handed over* to the caller (fresh buffers are allocated for the next one), so the caller may
    queue them without a copy and the builder never writes into an unroll it has emitted.

    Usage (actor loop)::

        builder.start(env.reset())
        while True:
            actions, logits = policy.act(builder.current_obs)
            res = env.step(actions)
            unroll = builder.add(actions, logits, res.reward, res.terminated, res.truncated,
                                 next_obs=res.obs, final_obs=res.next_obs, policy_version=version)
            if unroll is not None:
                push(unroll)

    Args:
        num_envs: K.
        unroll_length: T.
        obs_shape: shape of one observation.
        obs_dtype: observation dtype (uint8 image observations stay bytes).
        num_actions: A, the width of the behaviour logits (Discrete actions).
        gamma: discount factor in [0, 1].
        core_size: H of the acting network's LSTM core; 0 (default) for a feed-forward network.
            With a core, :meth:`start` and :meth:`add` take the core state and every unroll
            carries its start state under :data:`CORE_STATE_KEY`.
        action_dim: D for Box actions (then ``num_actions`` is ignored): actions are float32
            ``[K, D]`` raw samples and the behaviour is their log-probabilities ``[K]``.
    """

    def __init__(
        self,
        num_envs: int,
        unroll_length: int,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype | type,
        num_actions: int,
        gamma: float,
        core_size: int = 0,
        action_dim: int = 0,
    ) -> None:
        self.continuous = bool(action_dim)
        if self.continuous:
            self.num_actions = 0
            fields = {
                "action": ((positive_int("action_dim", action_dim),), np.float32),
                "behaviour_log_prob": ((), np.float32),
            }
        else:
            self.num_actions = positive_int("num_actions", num_actions)
            fields = {
                "action": ((), np.int64),
                "behaviour_logits": ((self.num_actions,), np.float32),
            }
        super().__init__(
            num_envs, unroll_length, obs_shape, obs_dtype, gamma, fields, core_size=core_size
        )
        self.unroll_length = self.length
        self._behaviour = "behaviour_log_prob" if self.continuous else "behaviour_logits"

    def add(  # type: ignore[override]
        self,
        action: np.ndarray,
        behaviour_logits: np.ndarray,
        reward: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        next_obs: np.ndarray,
        final_obs: np.ndarray | None = None,
        policy_version: int = 0,
        next_core_state: np.ndarray | None = None,
    ) -> dict[str, np.ndarray] | None:
        """Record one step of all K envs; returns the finished unroll every T steps, else None.

        Args:
            action: ``[K]`` actions taken on :attr:`current_obs` (``[K, D]`` raw Box actions).
            behaviour_logits: ``[K, A]`` the logits they were sampled from (for Box actions:
                their log-probabilities ``[K]``).
            reward, terminated, truncated: ``[K]`` as returned by the environment.
            next_obs: ``[K, *obs]`` observations to act on next (reset ones where an episode
                ended), i.e. ``StepResult.obs``.
            final_obs: ``[K, *obs]`` the true next observations (``StepResult.next_obs``);
                required when any env is truncated, only its truncated rows are read.
            policy_version: version of the parameters that produced the behaviour; the
                unroll reports the oldest one seen, so lag is never under-reported.
            next_core_state: with a core, ``[2, K, H]`` the state that will act on ``next_obs``
                (already zeroed where an episode ended). Read only when it starts the next
                unroll.
        """
        return super().add(
            {"action": action, self._behaviour: behaviour_logits},
            reward,
            terminated,
            truncated,
            next_obs,
            final_obs=final_obs,
            policy_version=policy_version,
            next_core_state=next_core_state,
        )


def stack_unrolls(unrolls: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate unrolls along the batch axis: ``[T, K1+K2+..., ...]``.

    ``final_obs_index`` columns are shifted to the stacked layout; ``policy_version`` becomes one
    entry per unroll (``[len(unrolls)]``) so the learner can report lag per unroll; core states
    (if any) are concatenated along their batch axis, ``[2, K1+K2+..., H]``.

    Raises:
        ConfigError: no unrolls, missing keys, or unrolls of different T / shapes.
    """
    continuous = bool(unrolls) and "behaviour_log_prob" in unrolls[0]
    keys = _time_major(unroll_keys(continuous))
    return stack_trajectories(unrolls, keys, what="unroll")
