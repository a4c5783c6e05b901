"""The Ape-X DPG learner's update: DDPG (Lillicrap et al. 2016) with TD3's three changes
(Fujimoto et al. 2018), each a config key:

* **twin critics** (``algo.twin_critics``): the target takes the minimum of two target critics;
* **target policy smoothing** (``algo.target_noise``, ``algo.target_noise_clip``): clipped
  Gaussian noise on the target action;
* **delayed actor updates** (``algo.policy_delay``): the actor and the Polyak averaging of the
  target networks every ``policy_delay`` critic updates.

The critic loss is the importance-weighted squared n-step TD error (prioritized replay, as in
Ape-X DPG), summed over the critics; new priorities are the first critic's ``|TD|``. The actor
loss is ``-mean Q_1(s, mu(s))``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch

from rlfleet.agents.common.optim import Adam, make_adam
from rlfleet.agents.dpg.network import DPGNetwork
from rlfleet.math import polyak_update_, smoothed_target_action, td3_target


class OptimizerPair:
    """The actor's and the critics' Adam as one checkpointed optimizer (the learner shell
    saves and restores ``optimizer.state_dict()``)."""

    def __init__(self, actor: Adam, critic: Adam) -> None:
        self.actor, self.critic = actor, critic

    def state_dict(self) -> dict[str, Any]:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])


def _split(
    online: DPGNetwork, target: DPGNetwork
) -> tuple[
    tuple[list[torch.Tensor], list[torch.Tensor]], tuple[list[torch.Tensor], list[torch.Tensor]]
]:
    """``((online, target) trainable, (online, target) fixed)``: the online network's trained
    parameters and their targets (Polyak-averaged), and everything else, which must match
    exactly (the observation normaliser's statistics and buffers)."""
    trained, fixed = ([], []), ([], [])
    for (_, o), (_, t) in zip(online.named_parameters(), target.named_parameters(), strict=True):
        pair = trained if o.requires_grad else fixed
        pair[0].append(o)
        pair[1].append(t)
    for o, t in zip(online.buffers(), target.buffers(), strict=True):
        fixed[0].append(o)
        fixed[1].append(t)
    return trained, fixed


class DPGUpdate:
    """One learner step on a batch of n-step transitions with importance weights."""

    def __init__(
        self,
        net: DPGNetwork,
        *,
        actor_lr: float,
        critic_lr: float,
        adam_eps: float = 1e-8,
        tau: float = 0.005,
        target_noise: float = 0.2,
        target_noise_clip: float = 0.5,
        policy_delay: int = 2,
        grad_clip: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.net = net
        self.target_net = copy.deepcopy(net)
        self.target_net.requires_grad_(False)
        self.actor_params = list(net.actor.parameters())
        self.critic_params = list(net.critics.parameters())
        self.optimizer = OptimizerPair(
            make_adam(self.actor_params, lr=actor_lr, eps=adam_eps),
            make_adam(self.critic_params, lr=critic_lr, eps=adam_eps),
        )
        self.tau = tau
        self.noise = target_noise
        self.noise_clip = target_noise_clip * net.half_range
        self.policy_delay = policy_delay
        self.grad_clip = grad_clip
        self.generator = torch.Generator().manual_seed(int(seed))
        self.updates = 0
        self._trained, self._fixed = _split(net, self.target_net)

    def target(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``y = r + discount * min_c Q'_c(s', smooth(mu'(s')))`` [B]."""
        t = self.target_net
        with torch.no_grad():
            x = t.features(batch["next_obs"])
            action = t.act(x)
            if self.noise > 0:
                eps = torch.randn(action.shape, generator=self.generator) * (
                    self.noise * t.half_range
                )
                action = smoothed_target_action(action, eps, self.noise_clip, t.low, t.high)
            return td3_target(batch["reward"], batch["discount"], t.q_features(x, action))

    def _clip(self, params: list[torch.Tensor]) -> float:
        if self.grad_clip > 0:
            return float(torch.nn.utils.clip_grad_norm_(params, self.grad_clip, foreach=True))
        return 0.0

    def step(self, batch: Mapping[str, torch.Tensor], weights: torch.Tensor) -> dict[str, Any]:
        """One critic step (and, every ``policy_delay`` steps, one actor step and the Polyak
        update). Returns ``abs_td`` (numpy, new priorities), ``loss`` (critic), ``q_mean`` and,
        on actor steps, ``actor_loss``."""
        y = self.target(batch)
        net = self.net
        x = net.features(batch["obs"])
        q = net.q_features(x, batch["action"])  # [C, B]
        td = y.unsqueeze(0) - q
        critic_loss = (weights * td.pow(2)).mean(dim=1).sum()
        opt = self.optimizer
        opt.critic.zero_grad(set_to_none=True)
        critic_loss.backward()
        self._clip(self.critic_params)
        opt.critic.step()
        self.updates += 1
        out: dict[str, Any] = {
            "abs_td": td[0].detach().abs().numpy(),
            "loss": float(critic_loss.detach()),
            "q_mean": float(q[0].detach().mean()),
        }
        if self.updates % self.policy_delay == 0:
            # the critics' gradients from this loss are discarded (the next critic step
            # zeroes them); only the actor's Adam steps
            actor_loss = -net.q_features(x.detach(), net.act(x.detach()), count=1)[0].mean()
            opt.actor.zero_grad(set_to_none=True)
            actor_loss.backward()
            self._clip(self.actor_params)
            opt.actor.step()
            out["actor_loss"] = float(actor_loss.detach())
            self.sync_targets(self.tau)
        return out

    @torch.no_grad()
    def sync_targets(self, tau: float) -> None:
        """Polyak-average the trainable tensors; copy the rest (normaliser statistics)."""
        online, target = self._trained
        polyak_update_(target, online, tau)
        for o, t in zip(*self._fixed, strict=True):
            t.copy_(o)
