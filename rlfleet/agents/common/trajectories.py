"""Fixed-length trajectories of K environments, time-major, for on-policy agents (IMPALA's
unrolls, PPO's rollouts): built by actors step by step, stacked by learners.

A trajectory (a plain ``dict`` of numpy arrays, so the codec ships it without pickle) holds:

=================== ===================== ======================================================
key                 shape / dtype         meaning
=================== ===================== ======================================================
``obs``             [T+1, K, *obs]         ``obs[t]`` is what the policy acted on at step t;
                                           ``obs[T]`` is the bootstrap observation.
*agent fields*      [T, K, *shape]         per step, as the agent declares them (``action``,
                                           behaviour logits or log-probabilities, ...).
``reward``          [T, K] float32         reward of step t.
``discount``        [T, K] float32         ``gamma * (1 - terminated_t)``.
``done``            [T, K] bool            the episode ended at step t (terminated or truncated).
``truncated``       [T, K] bool            ended by a time limit and **not** terminated.
``final_obs``       [N, *obs]              the true last observation of each truncated step.
``final_obs_index`` [N, 2] int64           its ``(t, k)``, row-major order of ``truncated``.
``policy_version``  [] int64               the oldest parameter version that acted in it.
``core_state``      [2, K, H] float32      only with a recurrent core: its state before
                                           ``obs[0]``.
=================== ===================== ======================================================

Environments auto-reset, so after the last step of an episode ``obs[t+1]`` is the *reset*
observation of the next one. A termination needs nothing more (``discount[t] = 0``). A
truncation (time limit) must bootstrap from the true final observation, which is carried
sparsely in ``final_obs`` (one per time limit; a dense copy of next observations would double
the traffic): learners rewrite that step as ``reward'[t] = reward[t] + gamma * V(x_final)``,
``discount'[t] = 0``, which is exact for V-trace and GAE alike. A step both terminated and
truncated counts as terminated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rlfleet.errors import ConfigError

__all__ = [
    "CORE_STATE_KEY",
    "STEP_KEYS",
    "TrajectoryBuilder",
    "stack_trajectories",
    "truncation_problem",
]

#: Per-step keys every trajectory has besides the agent's own fields.
STEP_KEYS = ("reward", "discount", "done", "truncated")
#: The extra key of trajectories acted by a network with a recurrent core.
CORE_STATE_KEY = "core_state"

FieldSpecs = Mapping[str, tuple[tuple[int, ...], np.dtype | type]]


def positive_int(name: str, value: object) -> int:
    """``value`` as an int >= 1; ConfigError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


class TrajectoryBuilder:
    """Collects T steps of K environments into trajectories (see the module docstring).

    Buffers are preallocated per trajectory and filled in place; a finished trajectory's arrays
    are *handed over* (fresh buffers are allocated for the next), so callers may queue them
    without a copy. Consecutive trajectories overlap by one observation (the bootstrap one).

    Args:
        num_envs: K.
        length: T.
        obs_shape, obs_dtype: one observation (uint8 images stay bytes).
        gamma: discount factor in [0, 1].
        fields: the agent's per-step fields, ``name -> (per-env shape, dtype)``; :meth:`add`
            takes one ``[K, *shape]`` array for each. Integer fields refuse non-integer input.
        core_size: H of a recurrent acting core; 0 (default) for a feed-forward network.
    """

    def __init__(
        self,
        num_envs: int,
        length: int,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype | type,
        gamma: float,
        fields: FieldSpecs,
        core_size: int = 0,
    ) -> None:
        self.num_envs = positive_int("num_envs", num_envs)
        self.length = positive_int("unroll_length", length)
        self.core_size = 0 if core_size == 0 else positive_int("core_size", core_size)
        if isinstance(gamma, bool) or not isinstance(gamma, int | float) or not 0 <= gamma <= 1:
            raise ConfigError(f"gamma must be a number in [0, 1], got {gamma!r}")
        self.gamma = float(gamma)
        self.obs_shape = tuple(int(d) for d in obs_shape)
        self.obs_dtype = np.dtype(obs_dtype)
        clash = set(fields) & {"obs", *STEP_KEYS, "final_obs", "final_obs_index"}
        if clash:
            raise ConfigError(f"fields {sorted(clash)} are the builder's own keys")
        self.fields = {k: (tuple(shape), np.dtype(dtype)) for k, (shape, dtype) in fields.items()}
        self._t = 0
        self._started = False
        self._version: int | None = None
        self._core_start: np.ndarray | None = None
        self._allocate()

    def _allocate(self) -> None:
        t, k = self.length, self.num_envs
        self._obs = np.empty((t + 1, k, *self.obs_shape), dtype=self.obs_dtype)
        self._own = {
            name: np.empty((t, k, *shape), dtype=dtype)
            for name, (shape, dtype) in self.fields.items()
        }
        self._reward = np.empty((t, k), dtype=np.float32)
        self._discount = np.empty((t, k), dtype=np.float32)
        self._done = np.empty((t, k), dtype=bool)
        self._truncated = np.empty((t, k), dtype=bool)
        # Sparse truncation records: (t, k, obs); few per trajectory, so a list is fine here.
        self._finals: list[tuple[int, int, np.ndarray]] = []

    @property
    def current_obs(self) -> np.ndarray:
        """The observations to act on now, ``[K, *obs_shape]`` (a view; do not modify)."""
        if not self._started:
            raise ConfigError("call start(obs) with the first observations before acting")
        return self._obs[self._t]

    def start(self, obs: np.ndarray, core_state: np.ndarray | None = None) -> None:
        """Begin (or restart, dropping any partial trajectory) from observations
        ``[K, *obs_shape]`` and, with a core, the state ``[2, K, H]`` that acts on them."""
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
        step: Mapping[str, np.ndarray],
        reward: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        next_obs: np.ndarray,
        final_obs: np.ndarray | None = None,
        policy_version: int = 0,
        next_core_state: np.ndarray | None = None,
    ) -> dict[str, np.ndarray] | None:
        """Record one step of all K envs; returns the finished trajectory every T steps.

        Args:
            step: the agent's fields for this step, ``name -> [K, *shape]``.
            reward, terminated, truncated: ``[K]`` as returned by the environment.
            next_obs: ``[K, *obs]`` observations to act on next (``StepResult.obs``).
            final_obs: ``[K, *obs]`` the true next observations (``StepResult.next_obs``);
                required when any env is truncated, only its truncated rows are read.
            policy_version: the parameters that acted; the trajectory reports the oldest.
            next_core_state: with a core, ``[2, K, H]`` the state that will act on ``next_obs``
                (already zeroed where an episode ended). Read only when it starts the next one.
        """
        if not self._started:
            raise ConfigError("call start(obs) with the first observations before add()")
        if self.core_size and next_core_state is None:
            raise ConfigError("next_core_state is required: the acting network has an LSTM core")
        k, t = self.num_envs, self._t
        if set(step) != set(self.fields):
            raise ConfigError(f"step has fields {sorted(step)}; expected {sorted(self.fields)}")
        values = {}
        for name, (shape, dtype) in self.fields.items():
            value = self._check(name, step[name], (k, *shape))
            if dtype.kind in "iu" and not np.issubdtype(value.dtype, np.integer):
                raise ConfigError(f"{name} must be integers, got dtype {value.dtype}")
            values[name] = value
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

        for name, value in values.items():
            self._own[name][t] = value
        self._reward[t] = reward
        self._discount[t] = np.where(term, 0.0, self.gamma)
        self._done[t] = term | trunc
        self._truncated[t] = trunc
        self._obs[t + 1] = next_obs
        version = int(policy_version)
        self._version = version if self._version is None else min(self._version, version)
        self._t = t + 1
        if self._t < self.length:
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
        out = {
            "obs": self._obs,
            **self._own,
            "reward": self._reward,
            "discount": self._discount,
            "done": self._done,
            "truncated": self._truncated,
            "final_obs": final_obs,
            "final_obs_index": index,
            "policy_version": np.array(self._version, dtype=np.int64),
        }
        if self.core_size:
            out[CORE_STATE_KEY] = self._core_start
            self._core_start = self._core("next_core_state", next_core_state)
        last_obs = self._obs[self.length]
        self._allocate()
        # the bootstrap observation of this trajectory is the first one of the next
        self._obs[0] = last_obs
        self._t = 0
        self._version = None
        return out


def stack_trajectories(
    items: Sequence[Mapping[str, np.ndarray]], step_keys: Sequence[str], what: str = "trajectory"
) -> dict[str, np.ndarray]:
    """Concatenate trajectories along the batch axis: ``[T, K1+K2+..., ...]``.

    ``step_keys`` are the time-major keys to concatenate (``obs`` and the per-step ones);
    ``final_obs_index`` columns are shifted to the stacked layout; ``policy_version`` becomes one
    entry per trajectory; core states (if any) are concatenated along their batch axis.
    ``what`` names one trajectory in error messages ("unroll", "rollout").

    Raises:
        ConfigError: no trajectories, missing keys, or trajectories of different T / shapes.
    """
    if not items:
        raise ConfigError(f"stacking needs at least one {what}, got none")
    needed = [*step_keys, "final_obs", "final_obs_index", "policy_version"]
    for i, u in enumerate(items):
        missing = [key for key in needed if key not in u]
        if missing:
            raise ConfigError(f"{what} {i} lacks keys {missing}; a {what} has {needed}")
    first = items[0]
    for i, u in enumerate(items[1:], start=1):
        for key in step_keys:
            if u[key].shape[0] != first[key].shape[0] or u[key].shape[2:] != first[key].shape[2:]:
                raise ConfigError(
                    f"{what} {i} has {key} of shape {u[key].shape}, incompatible with "
                    f"{what} 0's {first[key].shape} (same T and per-step shape needed)"
                )
    out: dict[str, np.ndarray] = {}
    for key in step_keys:
        out[key] = np.concatenate([u[key] for u in items], axis=1)
    offset = 0
    indices = []
    for u in items:
        index = np.array(u["final_obs_index"], dtype=np.int64).reshape(-1, 2)
        indices.append(index + np.array([0, offset], dtype=np.int64))
        offset += u["obs"].shape[1]
    out["final_obs"] = np.concatenate([u["final_obs"] for u in items], axis=0)
    out["final_obs_index"] = np.concatenate(indices, axis=0)
    out["policy_version"] = np.array([int(u["policy_version"]) for u in items], dtype=np.int64)
    with_core = [CORE_STATE_KEY in u for u in items]
    if any(with_core):
        if not all(with_core):
            raise ConfigError(
                f"{what}s {[i for i, c in enumerate(with_core) if not c]} lack "
                f"{CORE_STATE_KEY!r} while others carry it: a batch comes from one network"
            )
        out[CORE_STATE_KEY] = np.concatenate([u[CORE_STATE_KEY] for u in items], axis=1)
    return out


def layout_problem(
    arrays: Mapping[str, np.ndarray],
    length: int,
    obs_shape: tuple[int, ...],
    obs_dtype: object,
    step_types: Mapping[str, str],
) -> str:
    """Why a received trajectory's ``obs`` is not ``[T+1, K, *obs_shape]`` of ``obs_dtype`` or
    a per-step field (``name -> dtype``) is not ``[T, K]``, or "" (K is read from ``obs``)."""
    obs, t = arrays["obs"], length
    if obs.dtype != np.dtype(obs_dtype) or obs.ndim != 2 + len(obs_shape):
        return f"obs is {obs.dtype.name}{list(obs.shape)}, expected {np.dtype(obs_dtype).name}"
    k = obs.shape[1]
    if obs.shape[0] != t + 1 or obs.shape[2:] != obs_shape or k < 1:
        return f"obs has shape {list(obs.shape)}, expected [{t + 1}, K, {list(obs_shape)}]"
    for key, dtype in step_types.items():
        a = arrays[key]
        if a.dtype.name != dtype or a.shape != (t, k):
            return f"{key} is {a.dtype.name}{list(a.shape)}, expected {dtype}[{t}, {k}]"
    return ""


def tail_problem(arrays: Mapping[str, np.ndarray], obs_shape: tuple[int, ...]) -> str:
    """Why a received trajectory's sparse ``final_obs`` / ``final_obs_index`` or its
    ``policy_version`` do not have their dtypes and shapes, or ""."""
    obs = arrays["obs"]
    final_obs, index = arrays["final_obs"], arrays["final_obs_index"]
    if final_obs.dtype != obs.dtype or final_obs.shape[1:] != obs_shape:
        return f"final_obs is {final_obs.dtype.name}{list(final_obs.shape)}"
    if index.dtype.name != "int64" or index.shape != (len(final_obs), 2):
        return f"final_obs_index is {index.dtype.name}{list(index.shape)}, expected [{len(final_obs)}, 2]"
    version = arrays["policy_version"]
    if version.dtype.name != "int64" or version.shape != ():
        return f"policy_version is {version.dtype.name}{list(version.shape)}, expected int64[]"
    return ""


def truncation_problem(
    arrays: Mapping[str, np.ndarray], index: np.ndarray, t: int, k: int, what: str
) -> str:
    """What is wrong with a ``[T, K]`` trajectory's truncation bookkeeping, or "": truncated steps
    must be done, and ``final_obs_index`` must list each truncated step ``(t, k)`` exactly once
    (``what`` names the trajectory in the message: "rollout", "unroll")."""
    trunc = arrays["truncated"]
    if (trunc & ~arrays["done"]).any():
        return "truncated steps not marked done"
    if len(index):
        if ((index < 0) | (index >= np.array([t, k]))).any():
            return f"final_obs_index points outside the {what}"
        flat = index[:, 0] * k + index[:, 1]
        if len(np.unique(flat)) != len(flat) or not trunc[index[:, 0], index[:, 1]].all():
            return "final_obs_index does not list distinct truncated steps"
    if int(trunc.sum()) != len(index):
        return f"{int(trunc.sum())} truncated steps but {len(index)} final observations"
    return ""
