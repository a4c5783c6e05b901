"""A run's trained policy in your own program: ``rlfleet.load_policy(run) -> Policy``.

``policy(obs)`` takes one observation (returns one action: an ``int`` for Discrete actions, a
float32 array for Box actions) or a batch ``[B, *obs_shape]`` (returns ``[B]`` / ``[B, D]``).
Observation normalisation is part of the network (``env.normalize_obs``), so raw observations
go in. A network with an LSTM core remembers the episodes being played between calls: call
:meth:`Policy.reset` when episodes start (``reset()`` for all, ``reset(done_mask)`` for some).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Policy", "load_policy"]


class Policy:
    """A run's acting network: greedy (as the run's agent defines it: argmax of Q-values or
    logits, a Gaussian's mean squashed or clipped into the bounds), or sampling from the policy
    for agents whose network outputs one (IMPALA, PPO)."""

    def __init__(self, loaded: Any, *, deterministic: bool = True, seed: int = 0) -> None:
        import torch

        from rlfleet.agents.common.networks import ActionScores, eval_policy

        self.loaded = loaded
        self.net = loaded.net
        self.config = loaded.config
        self.checkpoint: Path = loaded.checkpoint
        self.env_spec = loaded.env
        self.deterministic = deterministic
        self._greedy = eval_policy(loaded.config, loaded.env, loaded.net, seed)
        self._scores: Any = None
        if not deterministic:
            probe = torch.zeros((1, *loaded.env.obs_shape), dtype=_torch_dtype(loaded.env))
            with torch.no_grad():
                scores = ActionScores(loaded.net).eval()
                out = scores.net(probe)
            if not isinstance(out, tuple):
                from rlfleet.errors import ConfigError

                raise ConfigError(
                    f"{loaded.checkpoint}: run.algorithm {loaded.config.run.algorithm!r} learns "
                    "a greedy policy (action values), not a stochastic one; load it with "
                    "deterministic=True"
                )
            self._scores = scores
            self._generator = torch.Generator().manual_seed(int(seed))

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return self.env_spec.obs_shape

    @property
    def action_space(self) -> Any:
        return self.env_spec.action_space

    @property
    def env_id(self) -> str:
        return self.config.env.id

    @property
    def recurrent(self) -> bool:
        from rlfleet.models import is_recurrent

        return bool(is_recurrent(self.net))

    def act(self, obs: np.ndarray, epsilons: np.ndarray | None = None) -> np.ndarray:
        """Actions of a batch ``[B, *obs_shape]`` (the evaluator's interface; ``epsilons`` is
        ignored unless greedy: then row i takes a random action with probability epsilons[i])."""
        obs = np.asarray(obs, dtype=self.env_spec.obs_dtype)
        if self._scores is None:
            eps = np.zeros(len(obs)) if epsilons is None else np.asarray(epsilons, np.float64)
            return self._greedy.act(obs, eps)
        return self._sample(obs)

    def _sample(self, obs: np.ndarray) -> np.ndarray:
        import torch

        from rlfleet.agents.common.networks import as_tensor

        with torch.no_grad():
            params = self._scores(as_tensor(obs))
            head = getattr(self.net, "policy", None)
            if head is not None and hasattr(head, "sample"):
                return head.to_env(head.sample(params, self._generator)).numpy()
            probs = torch.softmax(params, dim=-1)
            return torch.multinomial(probs, 1, generator=self._generator)[:, 0].numpy()

    def __call__(self, obs: Any) -> Any:
        """One action for one observation, or ``[B]`` actions for a batch ``[B, *obs_shape]``."""
        array = np.asarray(obs)
        for shape in self.accepted_obs_shapes:
            if array.shape == shape:
                action = self.act(array[None])[0]
                return int(action) if np.ndim(action) == 0 else action
            if array.ndim == len(shape) + 1 and array.shape[1:] == shape:
                return self.act(array)
        from rlfleet.errors import EnvError

        shape = self.obs_shape
        without = (
            f" (or {self.accepted_obs_shapes[1]} without its critic-only inputs)"
            if len(self.accepted_obs_shapes) > 1
            else ""
        )
        raise EnvError(
            f"observation of shape {array.shape} fits neither one observation {shape}{without} "
            f"nor a batch [B, {', '.join(map(str, shape))}] of {self.env_id}"
        )

    @property
    def accepted_obs_shapes(self) -> list[tuple[int, ...]]:
        """The training observation shape, and for a network with critic-only inputs
        (``model.critic_inputs``) the shape without them: deployment has no privileged
        features, and the policy never used them."""
        shapes = [tuple(self.obs_shape)]
        policy_dim = getattr(self.net, "policy_dim", None)
        if policy_dim is not None:
            shapes.append((int(policy_dim),))
        return shapes

    def reset(self, done: np.ndarray | None = None) -> None:
        """Start new episodes: all (``done=None``; also lets the next call change the batch
        size) or where ``done`` is True. Clears an LSTM core's state; nothing otherwise."""
        if self._scores is not None:
            self._scores.reset(done)
        else:
            self._greedy.reset(done)


def _torch_dtype(env: Any) -> Any:
    import torch

    return torch.from_numpy(np.zeros(1, env.obs_dtype)).dtype


def load_policy(
    run_or_checkpoint: str | Path, *, deterministic: bool = True, seed: int = 0
) -> Policy:
    """The policy of a run folder (its best-evaluated parameters, ``checkpoints/best``, when it
    has them, else its latest checkpoint) or of a checkpoint folder. ``deterministic=False``
    samples actions from the policy (IMPALA, PPO; seeded by ``seed``). Loads weights only
    (safetensors): no code from the run folder is executed; a custom environment's module
    (``module:EnvId`` / ``env.entry_point``) is imported to read its spaces."""
    from rlfleet.agents.common.networks import load_network
    from rlfleet.errors import CheckpointError

    path = Path(run_or_checkpoint)
    if not path.exists():
        raise CheckpointError(f"{path}: no such run or checkpoint folder")
    return Policy(load_network(path), deterministic=deterministic, seed=seed)
