"""Critic-only inputs: observation entries that the value function sees and the policy never does.

An environment may append privileged features to its observations (netsim's ``privileged=True``:
the path's capacity, base RTT, queue limit and loss rate, which a deployed sender cannot know).
With ``model.critic_inputs = k`` (IMPALA, PPO) the last ``k`` entries of every observation are
cut off before the policy network and feed a small critic MLP ``g`` whose output is added to the
value:

    logits = pi(o),  V(o, p) = V_base(o) + g(p)      (o = obs[:-k], p = obs[-k:])

The additive form is deliberate: under the log rewards the per-path scale enters additively
(``log thr = log capacity + log utilisation``), which is exactly what ``g`` learns, and the
policy's gradients cannot depend on ``p`` at all. ``g``'s last layer starts at zero, so the
wrapped network starts as the base network.

The wrapped network accepts observations **with or without** the ``k`` entries: without them it
returns the base value (no ``g``), so evaluation and deployment need none of the privileged
features (the greedy policy's actions do not depend on them either way).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rlfleet.agents.common.critic_check import check_critic_inputs
from rlfleet.errors import ConfigError
from rlfleet.models import is_recurrent

__all__ = ["CriticInputs", "check_critic_inputs", "with_critic_inputs"]


class CriticInputs(nn.Module):
    """``base`` (a policy-value network on ``obs[:-k]``) plus a critic MLP on ``obs[-k:]``.

    Works for feed-forward networks (``forward(obs) -> (params, value)``, plus
    ``policy_params`` when the base has it) and LSTM cores (``forward(obs, state)``,
    ``unroll``, ``initial_state``)."""

    def __init__(self, base: nn.Module, obs_dim: int, k: int, hidden: int = 64) -> None:
        super().__init__()
        if not 0 < k < obs_dim:
            raise ConfigError(f"critic inputs k = {k} must be in (0, {obs_dim})")
        self.base = base
        self.policy_dim = int(obs_dim - k)
        self.k = int(k)
        self.critic = nn.Sequential(nn.Linear(k, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        nn.init.zeros_(self.critic[2].weight)
        nn.init.zeros_(self.critic[2].bias)
        self.recurrent = is_recurrent(base)

    # -- attributes callers read from policy-value networks
    @property
    def policy(self) -> nn.Module:
        return self.base.policy

    @property
    def num_actions(self) -> int:
        return self.base.num_actions

    @property
    def lstm_size(self) -> int:
        return self.base.lstm_size

    def initial_state(self, batch_size: int) -> torch.Tensor:
        return self.base.initial_state(batch_size)

    def _split(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        n = obs.shape[-1]
        if n == self.policy_dim:
            return obs, None
        if n != self.policy_dim + self.k:
            raise ConfigError(
                f"observations of width {n}; this network takes {self.policy_dim} (policy) or "
                f"{self.policy_dim + self.k} (policy + {self.k} critic-only inputs)"
            )
        return obs[..., : self.policy_dim], obs[..., self.policy_dim :]

    def _extra(self, p: torch.Tensor | None, value: torch.Tensor) -> torch.Tensor:
        if p is None:
            return value
        return value + self.critic(p.to(value.dtype)).squeeze(-1)

    def policy_params(self, obs: torch.Tensor) -> torch.Tensor:
        """The policy's distribution parameters; privileged entries are ignored."""
        return self.base.policy_params(self._split(obs)[0])

    def forward(self, obs: torch.Tensor, state: torch.Tensor | None = None) -> Any:
        x, p = self._split(obs)
        if self.recurrent:
            logits, value, new_state = self.base(x, state)
            return logits, self._extra(p, value), new_state
        logits, value = self.base(x)
        return logits, self._extra(p, value)

    def unroll(
        self, obs: torch.Tensor, state: torch.Tensor, reset: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[int, torch.Tensor]]:
        """:meth:`LSTMPolicyValueNetwork.unroll` on ``obs[..., :-k]``, values plus ``g``."""
        x, p = self._split(obs)
        logits, values, after = self.base.unroll(x, state, reset)
        return logits, self._extra(p, values), after


def with_critic_inputs(base: nn.Module, obs_shape: tuple[int, ...], k: int) -> nn.Module:
    """``base`` itself when ``k == 0``, else wrapped in :class:`CriticInputs`."""
    return base if k == 0 else CriticInputs(base, int(obs_shape[0]), k)
