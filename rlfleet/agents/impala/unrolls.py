"""IMPALA's unrolls: T steps of K environments, built by actors and stacked by the learner.

Unrolls are time-major and carry the last observation for bootstrapping.

An unroll (a plain ``dict`` of numpy arrays, so the codec can ship it without pickle) holds:

=================== ===================== ======================================================
key                 shape / dtype         meaning
=================== ===================== ======================================================
``obs``             [T+1, K, *obs] obs     ``obs[t]`` is what the policy acted on at step t;
                    dtype                  ``obs[T]`` is the bootstrap observation ``x_T``.
``action``          [T, K] int64           action taken at step t.
``reward``          [T, K] float32         reward of step t.
``discount``        [T, K] float32         ``gamma * (1 - terminated_t)``.
``done``            [T, K] bool            the episode ended at step t (terminated or truncated).
``truncated``       [T, K] bool            ended by a time limit and **not** terminated.
``behaviour_logits`` [T, K, A] float32     the actor's (mu) logits at ``obs[t]``.
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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rlfleet.errors import ConfigError

__all__ = ["CORE_STATE_KEY", "UNROLL_KEYS", "UnrollBuilder", "stack_unrolls"]

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
"""The keys of every unroll (and of a batch made by :func:`stack_unrolls`)."""

CORE_STATE_KEY = "core_state"
"""The extra key of unrolls acted by a network with an LSTM core: its state before ``obs[0]``."""


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


class UnrollBuilder:
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
        num_actions: A, the width of the behaviour logits.
        gamma: discount factor in [0, 1].
        core_size: H of the acting network's LSTM core; 0 (default) for a feed-forward network.
            With a core, :meth:`start` and :meth:`add` take the core state and every unroll
            carries its start state under :data:`CORE_STATE_KEY`.
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
    ) -> None:
        self.num_envs = _positive_int("num_envs", num_envs)
        self.core_size = 0 if core_size == 0 else _positive_int("core_size", core_size)
        self.unroll_length = _positive_int("unroll_length", unroll_length)
        self.num_actions = _positive_int("num_actions", num_actions)
        if isinstance(gamma, bool) or not isinstance(gamma, int | float) or not 0 <= gamma <= 1:
            raise ConfigError(f"gamma must be a number in [0, 1], got {gamma!r}")
        self.gamma = float(gamma)
        self.obs_shape = tuple(int(d) for d in obs_shape)
        self.obs_dtype = np.dtype(obs_dtype)
        self._t = 0
        self._started = False
        self._version: int | None = None
        self._core_start: np.ndarray | None = None
        self._allocate()

    def _allocate(self) -> None:
        t, k = self.unroll_length, self.num_envs
        self._obs = np.empty((t + 1, k, *self.obs_shape), dtype=self.obs_dtype)
        self._action = np.empty((t, k), dtype=np.int64)
        self._reward = np.empty((t, k), dtype=np.float32)
        self._discount = np.empty((t, k), dtype=np.float32)
        self._done = np.empty((t, k), dtype=bool)
        self._truncated = np.empty((t, k), dtype=bool)
        self._logits = np.empty((t, k, self.num_actions), dtype=np.float32)
        # Sparse truncation records: (t, k, obs); few per unroll, so a list is fine here.
        self._finals: list[tuple[int, int, np.ndarray]] = []

    @property
    def current_obs(self) -> np.ndarray:
        """The observations to act on now, ``[K, *obs_shape]`` (a view; do not modify)."""
        if not self._started:
            raise ConfigError("call start(obs) with the first observations before acting")
        return self._obs[self._t]

    def start(self, obs: np.ndarray, core_state: np.ndarray | None = None) -> None:
        """Begin (or restart, dropping any partial unroll) from observations ``[K, *obs_shape]``
        and, with a core, the state ``[2, K, H]`` that acts on them."""
        self._check("obs", obs, (self.num_envs, *self.obs_shape))
        self._core_start = self._core("core_state", core_state)
        self._t = 0
        self._finals = []
        self._version = None
        self._obs[0] = obs
        self._started = True

    def _core(self, name: str, state: np.ndarray | None) -> np.ndarray | None:
        """A private float32 copy of a core state, checked; None without a core."""
        if not self.core_size:
            if state is not None:
                raise ConfigError(f"{name} given but this builder has no core (core_size=0)")
            return None
        if state is None:
            raise ConfigError(f"{name} is required: the acting network has an LSTM core")
        shape = (2, self.num_envs, self.core_size)
        return np.array(self._check(name, state, shape), dtype=np.float32)

    def _check(self, name: str, value: object, shape: tuple[int, ...]) -> np.ndarray:
        arr = np.asarray(value)
        if arr.shape != shape:
            raise ConfigError(f"{name} has shape {arr.shape}; expected {shape} (K={self.num_envs})")
        return arr

    def add(
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
            action: ``[K]`` actions taken on :attr:`current_obs`.
            behaviour_logits: ``[K, A]`` the logits they were sampled from.
            reward, terminated, truncated: ``[K]`` as returned by the environment.
            next_obs: ``[K, *obs]`` observations to act on next (reset ones where an episode
                ended), i.e. ``StepResult.obs``.
            final_obs: ``[K, *obs]`` the true next observations (``StepResult.next_obs``);
                required when any env is truncated, only its truncated rows are read.
            policy_version: version of the parameters that produced ``behaviour_logits``; the
                unroll reports the oldest one seen, so lag is never under-reported.
            next_core_state: with a core, ``[2, K, H]`` the state that will act on ``next_obs``
                (already zeroed where an episode ended). Read only when it starts the next
                unroll.
        """
        if not self._started:
            raise ConfigError("call start(obs) with the first observations before add()")
        if self.core_size and next_core_state is None:
            raise ConfigError("next_core_state is required: the acting network has an LSTM core")
        k = self.num_envs
        t = self._t
        action = self._check("action", action, (k,))
        if not np.issubdtype(action.dtype, np.integer):
            raise ConfigError(f"action must be integers, got dtype {action.dtype}")
        logits = self._check("behaviour_logits", behaviour_logits, (k, self.num_actions))
        reward = self._check("reward", reward, (k,))
        term = self._check("terminated", terminated, (k,)).astype(bool)
        trunc = self._check("truncated", truncated, (k,)).astype(bool) & ~term
        next_obs = self._check("next_obs", next_obs, (k, *self.obs_shape))
        if trunc.any():
            if final_obs is None:
                raise ConfigError(
                    f"envs {np.flatnonzero(trunc).tolist()} were truncated but final_obs is None;"
                    " pass the true next observations (StepResult.next_obs) to bootstrap from"
                )
            final_obs = self._check("final_obs", final_obs, (k, *self.obs_shape))
            for i in np.flatnonzero(trunc):
                self._finals.append((t, int(i), np.array(final_obs[i], dtype=self.obs_dtype)))

        self._action[t] = action
        self._logits[t] = logits
        self._reward[t] = reward
        self._discount[t] = np.where(term, 0.0, self.gamma)
        self._done[t] = term | trunc
        self._truncated[t] = trunc
        self._obs[t + 1] = next_obs
        version = int(policy_version)
        self._version = version if self._version is None else min(self._version, version)
        self._t = t + 1
        if self._t < self.unroll_length:
            return None
        return self._emit(next_core_state)

    def _emit(self, next_core_state: np.ndarray | None) -> dict[str, np.ndarray]:
        finals = self._finals
        if finals:
            final_obs = np.stack([o for _, _, o in finals])
            index = np.array([(t, k) for t, k, _ in finals], dtype=np.int64)
        else:
            final_obs = np.empty((0, *self.obs_shape), dtype=self.obs_dtype)
            index = np.empty((0, 2), dtype=np.int64)
        unroll = {
            "obs": self._obs,
            "action": self._action,
            "reward": self._reward,
            "discount": self._discount,
            "done": self._done,
            "truncated": self._truncated,
            "behaviour_logits": self._logits,
            "final_obs": final_obs,
            "final_obs_index": index,
            "policy_version": np.array(self._version, dtype=np.int64),
        }
        if self.core_size:
            unroll[CORE_STATE_KEY] = self._core_start
            self._core_start = self._core("next_core_state", next_core_state)
        last_obs = self._obs[self.unroll_length]
        self._allocate()
        # The bootstrap observation of this unroll is the first one of the next: unrolls overlap
        # by one observation so no step is lost between them.
        self._obs[0] = last_obs
        self._t = 0
        self._version = None
        return unroll


def stack_unrolls(unrolls: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate unrolls along the batch axis: ``[T, K1+K2+..., ...]``.

    ``final_obs_index`` columns are shifted to the stacked layout; ``policy_version`` becomes one
    entry per unroll (``[len(unrolls)]``) so the learner can report lag per unroll; core states
    (if any) are concatenated along their batch axis, ``[2, K1+K2+..., H]``.

    Raises:
        ConfigError: no unrolls, missing keys, or unrolls of different T / shapes.
    """
    if not unrolls:
        raise ConfigError("stack_unrolls needs at least one unroll, got none")
    for i, u in enumerate(unrolls):
        missing = [key for key in UNROLL_KEYS if key not in u]
        if missing:
            raise ConfigError(f"unroll {i} lacks keys {missing}; an unroll has {list(UNROLL_KEYS)}")
    first = unrolls[0]
    for i, u in enumerate(unrolls[1:], start=1):
        for key in ("obs", "behaviour_logits"):
            if u[key].shape[0] != first[key].shape[0] or u[key].shape[2:] != first[key].shape[2:]:
                raise ConfigError(
                    f"unroll {i} has {key} of shape {u[key].shape}, incompatible with unroll 0's"
                    f" {first[key].shape} (same T and per-step shape needed)"
                )
    out: dict[str, np.ndarray] = {}
    for key in ("obs", "action", "reward", "discount", "done", "truncated", "behaviour_logits"):
        out[key] = np.concatenate([u[key] for u in unrolls], axis=1)
    offset = 0
    indices = []
    for u in unrolls:
        index = np.array(u["final_obs_index"], dtype=np.int64).reshape(-1, 2)
        indices.append(index + np.array([0, offset], dtype=np.int64))
        offset += u["action"].shape[1]
    out["final_obs"] = np.concatenate([u["final_obs"] for u in unrolls], axis=0)
    out["final_obs_index"] = np.concatenate(indices, axis=0)
    out["policy_version"] = np.array([int(u["policy_version"]) for u in unrolls], dtype=np.int64)
    with_core = [CORE_STATE_KEY in u for u in unrolls]
    if any(with_core):
        if not all(with_core):
            raise ConfigError(
                f"unrolls {[i for i, c in enumerate(with_core) if not c]} lack {CORE_STATE_KEY!r}"
                " while others carry it: all unrolls of a batch come from the same network"
            )
        out[CORE_STATE_KEY] = np.concatenate([u[CORE_STATE_KEY] for u in unrolls], axis=1)
    return out
