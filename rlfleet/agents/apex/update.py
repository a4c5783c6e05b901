"""The Ape-X learner's update: a loss on online and target networks, Adam, gradient clipping and a
periodic target sync.

The loss is passed in (Acme's pattern: a variant is another loss given to the same update):
:func:`double_dqn_loss` is Ape-X DQN's n-step double-DQN Huber loss; DQfD and Ape-X DQfD pass
:func:`rlfleet.agents.apex.dqfd.dqfd_loss` with their weights. Neither knows about processes or
transports: the learner feeds them tensors.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping

import numpy as np
import torch

from rlfleet.agents.common.optim import make_adam
from rlfleet.math import double_q_target, td_errors, weighted_huber_loss

#: ``loss(net, target_net, batch, weights) -> (loss, parts)``; ``parts`` are detached scalars
#: (named loss terms, ``q_mean``) plus ``abs_td`` [B], the new priorities.
Loss = Callable[
    [torch.nn.Module, torch.nn.Module, Mapping[str, torch.Tensor], torch.Tensor],
    tuple[torch.Tensor, dict[str, torch.Tensor]],
]


def to_torch(fields: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """numpy replay fields -> tensors (zero-copy where contiguous), as the learner does."""
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in fields.items()}


def double_dqn_loss(
    net: torch.nn.Module,
    target_net: torch.nn.Module,
    batch: Mapping[str, torch.Tensor],
    weights: torch.Tensor,
    *,
    double: bool = True,
    huber_delta: float = 1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Ape-X DQN: importance-weighted Huber loss of n-step (double) DQN TD errors.

    ``batch`` holds ``obs, action, reward, discount, next_obs`` (reward and discount already the
    n-step sums). The online network sees ``obs`` and ``next_obs`` in one forward pass.
    """
    obs, next_obs = batch["obs"], batch["next_obs"]
    q_all = net(torch.cat([obs, next_obs], dim=0))
    q, next_q_online = q_all[: len(obs)], q_all[len(obs) :].detach()
    with torch.no_grad():
        next_q_target = target_net(next_obs)
    target = double_q_target(
        batch["reward"], batch["discount"], next_q_online, next_q_target, double
    )
    td = td_errors(q, batch["action"], target)
    loss = weighted_huber_loss(td, weights, huber_delta)
    return loss, {"abs_td": td.detach().abs(), "q_mean": q.detach().mean()}


class DQNUpdate:
    """One learner step: ``loss``, Adam, gradient-norm clipping, target sync every
    ``target_update_interval`` steps. ``loss`` defaults to :func:`double_dqn_loss`."""

    def __init__(
        self,
        net: torch.nn.Module,
        *,
        lr: float,
        adam_eps: float,
        grad_clip: float,
        target_update_interval: int,
        double: bool = True,
        huber_delta: float = 1.0,
        loss: Loss | None = None,
    ) -> None:
        self.net = net
        self.target_net = copy.deepcopy(net)
        self.target_net.requires_grad_(False)
        self.optimizer = make_adam(net.parameters(), lr=lr, eps=adam_eps)
        self.grad_clip = grad_clip
        self.target_update_interval = target_update_interval
        self.double = double
        self.huber_delta = huber_delta
        self.loss: Loss = loss or functools.partial(
            double_dqn_loss, double=double, huber_delta=huber_delta
        )
        self.updates = 0

    def step(self, batch: Mapping[str, torch.Tensor], weights: torch.Tensor) -> dict[str, object]:
        """One gradient step; returns ``abs_td`` (new priorities, numpy), ``loss``,
        ``grad_norm`` and the loss's other parts as floats (``abs_td_1`` stays an array)."""
        loss, parts = self.loss(self.net, self.target_net, batch, weights)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(
            self.net.parameters(), self.grad_clip, foreach=True
        )
        self.optimizer.step()
        self.updates += 1
        if self.updates % self.target_update_interval == 0:
            self.sync_target()
        out: dict[str, object] = {
            "abs_td": parts.pop("abs_td").numpy(),
            "loss": float(loss.detach()),
            "grad_norm": float(grad_norm),
        }
        for name, value in parts.items():
            out[name] = value.numpy() if value.ndim else float(value)
        return out

    def sync_target(self) -> None:
        self.target_net.load_state_dict(self.net.state_dict())
