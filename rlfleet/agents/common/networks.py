"""Any agent's network as a greedy policy, and checkpoints back into networks.

* :class:`ActionScores`: a network as ``obs -> [B, A]`` scores whose argmax is the greedy action
  (Q-values, or the logits of a ``(logits, value)`` output), optionally divided by a temperature
  so that ``softmax(scores)`` is a policy. This is how the evaluator, ``rlfleet record``,
  ``rlfleet netsim eval`` and a kickstarting teacher act with a run's network.
* :class:`EpsilonGreedy`: batched epsilon-greedy acting on such scores.
* :func:`eval_policy`: the greedy policy of a run's network, as its agent defines it
  (``spec.make_eval_policy``; default :class:`ArgmaxPolicy`, the argmax of the scores), and
  :func:`head_policy`, the one of networks with a policy head (:class:`HeadPolicy` for Box
  actions: the Gaussian's mean, squashed or clipped into the bounds).
* :func:`load_network`: a checkpoint (or a run folder's latest) back into its network, rebuilt by
  the agent spec of the config saved in the checkpoint. Weights load through the checkpoint
  loader (safetensors and ``torch.load(weights_only=True)``): no code runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rlfleet.agents import registry
from rlfleet.agents.common.checkpoint import load_weights, resolve_checkpoint
from rlfleet.envs.spec import EnvSpec, probe_env
from rlfleet.errors import CheckpointError, ConfigError
from rlfleet.models import CoreStateHolder, is_recurrent


def logits_of(out: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The action scores of a network output: the tensor itself, or the first of a tuple
    (``(logits, value)`` of a policy-value network)."""
    return out[0] if isinstance(out, tuple) else out


def as_tensor(x: np.ndarray) -> torch.Tensor:
    """A torch view of a numpy array (made contiguous first when it is not)."""
    return torch.from_numpy(np.ascontiguousarray(x))


class ActionScores(nn.Module):
    """``obs -> [B, A]`` scores divided by ``temperature``; the argmax is the greedy action.

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


class EpsilonGreedy:
    """Batched epsilon-greedy acting on a scores network (a Q-network or :class:`ActionScores`)."""

    def __init__(self, net: nn.Module, num_actions: int, seed: int) -> None:
        self.net = net
        self.num_actions = num_actions
        self.rng = np.random.default_rng(seed)

    @torch.no_grad()  # not inference_mode: an LSTM core state is reset in place between calls
    def act(self, obs: np.ndarray, epsilons: np.ndarray) -> np.ndarray:
        """One action per row of ``obs``; row i explores with probability ``epsilons[i]``."""
        greedy = self.net(as_tensor(obs)).argmax(dim=1).numpy()
        explore = self.rng.random(len(obs)) < epsilons
        if explore.any():
            random_actions = self.rng.integers(0, self.num_actions, size=len(obs))
            greedy = np.where(explore, random_actions, greedy)
        return greedy.astype(np.int64)


class ArgmaxPolicy(EpsilonGreedy):
    """The default greedy policy: epsilon-greedy on the argmax of :class:`ActionScores`;
    :meth:`reset` zeroes an LSTM core's state where episodes ended."""

    def __init__(self, net: nn.Module, num_actions: int, seed: int) -> None:
        super().__init__(ActionScores(net), num_actions, seed)

    def reset(self, done: np.ndarray | None = None) -> None:
        self.net.reset(done)


class HeadPolicy:
    """Greedy acting from a feed-forward network with a policy head (``net.policy``, see
    :mod:`rlfleet.models.heads`) whose output is ``(params, value)``: the head's greedy action
    (argmax, or a Gaussian's mean squashed / clipped into the Box); rows that explore
    (``epsilons``) sample from the policy instead."""

    def __init__(self, net: nn.Module, seed: int) -> None:
        self.net = net
        self.head = net.policy
        self.generator = torch.Generator().manual_seed(int(seed))
        self.rng = np.random.default_rng(seed)

    @torch.no_grad()
    def act(self, obs: np.ndarray, epsilons: np.ndarray) -> np.ndarray:
        params = logits_of(self.net(as_tensor(obs)))
        actions = self.head.greedy(params)
        explore = self.rng.random(len(obs)) < epsilons
        if explore.any():
            sampled = self.head.to_env(self.head.sample(params, self.generator))
            mask = torch.from_numpy(explore).reshape(-1, *([1] * (actions.dim() - 1)))
            actions = torch.where(mask, sampled, actions)
        return actions.numpy().astype(self.head.action_dtype, copy=False)

    def reset(self, done: np.ndarray | None = None) -> None:
        return None  # feed-forward: nothing to forget


def head_policy(config: Any, env: EnvSpec, net: nn.Module, seed: int) -> Any:
    """A ``spec.make_eval_policy`` for agents whose networks carry a policy head: the argmax
    (:class:`ArgmaxPolicy`, LSTM cores included) for Discrete actions, :class:`HeadPolicy`
    for Box actions."""
    if env.discrete:
        return ArgmaxPolicy(net, env.num_actions, seed)
    return HeadPolicy(net, seed)


def eval_policy(config: Any, env: EnvSpec, net: nn.Module, seed: int) -> Any:
    """The greedy policy of ``net`` as ``config``'s agent defines it (``spec.make_eval_policy``,
    default :class:`ArgmaxPolicy`): ``act(obs, epsilons) -> actions``, ``reset(done)``."""
    make = registry.spec_of(config).make_eval_policy
    if make is not None:
        return make(config, env, net, seed)
    return ArgmaxPolicy(net, env.num_actions, seed)


@dataclass
class LoadedNetwork:
    """A checkpoint's online network (in eval mode) and the config it was trained with."""

    net: nn.Module
    config: Any
    checkpoint: Path
    env: EnvSpec

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return self.env.obs_shape

    @property
    def num_actions(self) -> int:
        return self.env.num_actions

    def scores(self, temperature: float = 1.0) -> ActionScores:
        return ActionScores(self.net, temperature).eval()


def load_network(path: str | Path) -> LoadedNetwork:
    """The online network of a checkpoint folder, or of a run folder's best-evaluated policy
    (else its latest checkpoint)."""
    folder = resolve_checkpoint(Path(path))
    tensors, state = load_weights(folder)
    if "config" not in state:
        raise CheckpointError(f"{folder}: state.json has no config to rebuild the network from")
    config = registry.config_from_dict(state["config"])
    env = probe_env(config.env.id, config.env.kwargs)
    net = registry.spec_of(config).make_network(config, env)
    online = {k[len("online.") :]: v for k, v in tensors.items() if k.startswith("online.")}
    try:
        net.load_state_dict(online)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{folder}: weights do not fit the saved config's network: {exc}"
        ) from exc
    net.eval()
    return LoadedNetwork(net, config, folder, env)
