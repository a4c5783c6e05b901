"""One PPO iteration on a batch of rollouts (:class:`PPOUpdate`); it knows nothing of processes.

1. One batched forward pass (no gradient) gives the values of all T+1 observations of every
   rollout and of the truncations' final observations.
2. Targets: GAE(lambda) advantages and returns (:func:`rlfleet.math.advantages.gae`) in synchronous mode;
   in asynchronous mode (APPO) V-trace targets (:func:`rlfleet.math.vtrace_from_importance_weights`,
   ``log rho = log pi_now - log mu``) and advantages ``r + gamma v_{s+1} - V(s)``, because the data
   come from older policies. A time-limit truncation bootstraps from the true final observation
   (``r + gamma V(x_final)``, trace cut), a termination does not.
3. ``epochs`` passes over the T * B steps in random minibatches: the clipped surrogate of the
   ratio ``pi / mu`` against the behaviour log-probabilities the actors sent (in synchronous mode
   ``mu`` *is* the policy at the start of the iteration), the value loss (optionally clipped
   around the values of step 1), minus the entropy bonus; per-minibatch advantage normalisation;
   global gradient-norm clipping. With ``target_kl``, the iteration stops at the first minibatch
   whose approximate KL exceeds 1.5 x target_kl, before its step (as Stable-Baselines3 does).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rlfleet.agents.common.optim import make_adam
from rlfleet.math import (
    approx_kl,
    clip_fraction,
    clipped_surrogate_loss,
    gae,
    normalize_advantages,
    value_loss,
    vtrace_from_importance_weights,
)
from rlfleet.models import ActorCriticNetwork

__all__ = ["PPOUpdate"]


class PPOUpdate:
    """The learner's iteration (see the module docstring); ``config`` is a
    :class:`~rlfleet.agents.ppo.config.PPOConfig`."""

    def __init__(self, net: ActorCriticNetwork, config: Any) -> None:
        self.net = net
        self.head = net.policy
        self.a = config.algo
        self.grad_clip = config.learner.grad_clip
        # the normaliser's statistics are parameters without gradients: nothing to optimise
        trainable = [p for p in net.parameters() if p.requires_grad]
        self.optimizer = make_adam(trainable, lr=config.learner.lr, eps=config.learner.adam_eps)

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    @torch.no_grad()
    def targets(self, batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """Flattened ``[T * B]`` training data of ``batch``: observations, actions, behaviour
        log-probabilities, values, advantages and returns."""
        a = self.a
        obs = torch.from_numpy(batch["obs"])
        reward = torch.from_numpy(batch["reward"]).float() * a.reward_scale
        discount = torch.from_numpy(batch["discount"]).float().clone()
        t, b = reward.shape
        flat = obs.reshape((t + 1) * b, *obs.shape[2:])
        final_obs = torch.from_numpy(batch["final_obs"]).to(obs.dtype)
        params_all, values_all = self.net(torch.cat([flat, final_obs]))
        values = values_all[: (t + 1) * b].reshape(t + 1, b)
        index = torch.from_numpy(batch["final_obs_index"]).long().reshape(-1, 2)
        if len(index):  # time limit: bootstrap from the true final observation, cut the trace
            ti, bi = index[:, 0], index[:, 1]
            reward[ti, bi] += discount[ti, bi] * values_all[(t + 1) * b :]
            discount[ti, bi] = 0.0
        n = t * b
        action = torch.from_numpy(batch["action"])
        actions = action.reshape(n, *action.shape[2:])
        behaviour = torch.from_numpy(batch["log_prob"]).float()
        current = self.head.log_prob(params_all[:n], actions).reshape(t, b)
        if a.mode == "sync":
            adv, ret = gae(reward, values[:t], values[t], discount, a.gae_lambda)
        else:
            vt = vtrace_from_importance_weights(
                log_rhos=current - behaviour,
                discounts=discount,
                rewards=reward,
                values=values[:t],
                bootstrap_value=values[t],
                lambda_=a.gae_lambda,
            )
            ret = vt.vs
            next_vs = torch.cat([vt.vs[1:], values[t : t + 1]])
            adv = reward + discount * next_vs - values[:t]
        return {
            "obs": flat[:n],
            "actions": actions,
            "behaviour": behaviour.reshape(n),
            # how far the learner's policy is from the one that acted (0 in sync mode, up to
            # float rounding: same parameters, same observation statistics)
            "behaviour_gap": (current - behaviour).abs().max(),
            "values": values[:t].reshape(n),
            "advantages": adv.reshape(n),
            "returns": ret.reshape(n),
        }

    def iterate(self, batch: dict[str, np.ndarray], clip_eps: float) -> dict[str, float]:
        """One PPO iteration on ``batch`` (stacked rollouts); returns its mean statistics."""
        a = self.a
        data = self.targets(batch)
        n = len(data["advantages"])
        stats: dict[str, list[float]] = {}
        stopped = False
        steps = 0
        for _ in range(a.epochs):
            order = torch.randperm(n)
            for start in range(0, n, a.minibatch_size):
                idx = order[start : start + a.minibatch_size]
                params, values = self.net(data["obs"][idx])
                log_ratio = (
                    self.head.log_prob(params, data["actions"][idx]) - data["behaviour"][idx]
                )
                kl = float(approx_kl(log_ratio))
                if a.target_kl and kl > 1.5 * a.target_kl:
                    stopped = True
                    break
                adv = data["advantages"][idx]
                if a.normalize_advantages:
                    adv = normalize_advantages(adv)
                pg = clipped_surrogate_loss(log_ratio, adv, clip_eps)
                vl = value_loss(values, data["returns"][idx], data["values"][idx], a.value_clip)
                entropy = self.head.entropy(params).mean()
                loss = pg + a.value_cost * vl - a.entropy_cost * entropy
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                norm = torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.grad_clip)
                self.optimizer.step()
                steps += 1
                for key, value in (
                    ("loss", loss),
                    ("pg_loss", pg),
                    ("value_loss", vl),
                    ("entropy", entropy),
                    ("approx_kl", kl),
                    ("clip_fraction", clip_fraction(log_ratio, clip_eps)),
                    ("grad_norm", norm),
                ):
                    number = value.item() if isinstance(value, torch.Tensor) else value
                    stats.setdefault(key, []).append(float(number))
            if stopped:
                break
        out = {key: float(np.mean(values)) for key, values in stats.items()}
        returns, values = data["returns"], data["values"]
        var = float(returns.var()) if n > 1 else 0.0
        out.update(
            gradient_steps=float(steps),
            early_stop=float(stopped),
            behaviour_gap=float(data["behaviour_gap"]),
            value_mean=float(values.mean()),
            # 1 - Var(R - V) / Var(R): how much of the returns the value function explains
            explained_variance=1.0 - float((returns - values).var()) / var if var > 0 else 0.0,
        )
        return out
