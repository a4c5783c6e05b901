"""Networks of a run, built from its config or loaded from its checkpoints.

* :func:`build_network`: what a run's learner trains and publishes (and its actors and evaluator
  load): a Q-network for Ape-X, a policy-value network for IMPALA.
* :class:`ActionScores`: any of them as ``obs -> [B, A]`` scores whose argmax is the greedy
  action (Q-values, or policy logits), optionally divided by a temperature so that
  ``softmax(scores)`` is a policy: this is how a checkpoint becomes a greedy evaluator's policy,
  ``rlfleet netsim eval``'s policy, or a kickstarting teacher.
* :func:`load_network`: a checkpoint (or a run folder's latest one) back into its network, with
  the architecture rebuilt from the config saved in the checkpoint. Weights load through the
  checkpoint loader (safetensors and ``torch.load(weights_only=True)``): no code runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rlfleet.algorithms.impala_actor import logits_of
from rlfleet.errors import CheckpointError, ConfigError
from rlfleet.models import (
    CoreStateHolder,
    build_policy_value_network,
    build_q_network,
    is_recurrent,
)
from rlfleet.runtime.checkpoint import load_checkpoint, resolve_checkpoint


def build_network(config: Any, obs_shape: tuple[int, ...], num_actions: int) -> nn.Module:
    """The network ``config``'s algorithm learns: policy-value for IMPALA, else a Q-network."""
    m = config.model
    if config.run.algorithm == "impala":
        return build_policy_value_network(
            obs_shape,
            num_actions,
            torso=m.torso,
            hidden=m.hidden,
            core=m.core,
            lstm_size=m.lstm_size,
        )
    return build_q_network(
        obs_shape, num_actions, torso=m.torso, hidden=m.hidden, dueling=m.dueling
    )


class ActionScores(nn.Module):
    """``obs -> [B, A]``: Q-values or policy logits (of a ``(logits, value)`` output), divided
    by ``temperature``. The argmax is the greedy action either way.

    A network with an LSTM core is wrapped in a :class:`~rlfleet.models.CoreStateHolder`, which
    keeps the state of the episodes being played between calls; :meth:`reset` zeroes it where
    episodes ended (callers that play episodes call it; for feed-forward networks it does
    nothing).
    """

    def __init__(self, net: nn.Module, temperature: float = 1.0) -> None:
        super().__init__()
        if not temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {temperature!r}")
        self.core = CoreStateHolder(net) if is_recurrent(net) else None
        self.net = self.core if self.core is not None else net
        self.temperature = float(temperature)

    def reset(self, done: np.ndarray | None = None) -> None:
        """New episodes start where ``done`` is True (everywhere if None): zero their core state.

        ``done=None`` also forgets the batch size, so the next call may play a different
        number of episodes."""
        if self.core is not None:
            if done is None:
                self.core.clear()
            else:
                self.core.reset(done)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        scores = logits_of(self.net(obs))
        return scores if self.temperature == 1.0 else scores / self.temperature


def env_spec(config: Any, seed: int = 0) -> tuple[tuple[int, ...], np.dtype, int]:
    """``(obs_shape, obs_dtype, num_actions)`` of ``config``'s environment (one probe env)."""
    from rlfleet.envs import make_vector_env

    probe = make_vector_env(config.env.id, 1, seed, env_kwargs=config.env.kwargs or None)
    try:
        return probe.obs_shape, probe.obs_dtype, probe.num_actions
    finally:
        probe.close()


@dataclass
class LoadedNetwork:
    """A checkpoint's online network (in eval mode) and the config it was trained with."""

    net: nn.Module
    config: Any
    checkpoint: Path
    obs_shape: tuple[int, ...]
    num_actions: int

    def scores(self, temperature: float = 1.0) -> ActionScores:
        return ActionScores(self.net, temperature).eval()


def load_network(path: str | Path) -> LoadedNetwork:
    """The online network of a checkpoint folder, or of a run folder's latest checkpoint."""
    from rlfleet.runtime.configs import config_from_dict

    folder = resolve_checkpoint(Path(path))
    tensors, _, state = load_checkpoint(folder)
    if "config" not in state:
        raise CheckpointError(f"{folder}: state.json has no config to rebuild the network from")
    config = config_from_dict(state["config"])
    obs_shape, _, num_actions = env_spec(config)
    net = build_network(config, obs_shape, num_actions)
    online = {k[len("online.") :]: v for k, v in tensors.items() if k.startswith("online.")}
    try:
        net.load_state_dict(online)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{folder}: weights do not fit the saved config's network: {exc}"
        ) from exc
    net.eval()
    return LoadedNetwork(net, config, folder, tuple(obs_shape), int(num_actions))


def load_teacher(
    path: str | Path, temperature: float, obs_shape: tuple[int, ...], num_actions: int
) -> ActionScores:
    """A frozen kickstarting teacher ``obs -> logits`` for a student of this observation shape
    and action count; its own architecture comes from its checkpoint's config."""
    loaded = load_network(path)
    if is_recurrent(loaded.net):
        raise ConfigError(
            f"teacher {loaded.checkpoint} has an LSTM core (model.core = "
            f"{loaded.config.model.core!r}); kickstarting needs the teacher's policy on the "
            "student's observations, and a recurrent teacher's state along the student's "
            "trajectories is not known. Use a feed-forward teacher (model.core = 'none'); the "
            "student itself may have an LSTM core"
        )
    if loaded.obs_shape != tuple(obs_shape) or loaded.num_actions != num_actions:
        raise ConfigError(
            f"teacher {loaded.checkpoint} ({loaded.config.env.id}) sees observations of shape "
            f"{loaded.obs_shape} and has {loaded.num_actions} actions; the student's environment "
            f"has {tuple(obs_shape)} and {num_actions}"
        )
    teacher = loaded.scores(temperature)
    teacher.requires_grad_(False)
    return teacher
