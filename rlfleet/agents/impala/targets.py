"""The network over a batch of unrolls, and the V-trace targets of what it computed.

:class:`UnrollForward` is IMPALA's forward half: learner logits and values (with graph), the
truncations' bootstraps from the true final observations, and V-trace from the behaviour's logits
(Discrete) or log-probabilities (Box). :class:`~rlfleet.agents.impala.update.ImpalaUpdate` turns
its output into losses and a gradient step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from rlfleet.agents.impala.batch import unroll_tensors
from rlfleet.agents.impala.unrolls import CORE_STATE_KEY
from rlfleet.errors import ConfigError
from rlfleet.math import vtrace_from_importance_weights, vtrace_from_logits
from rlfleet.math.vtrace import VTraceFromLogitsReturns

__all__ = ["UnrollForward"]


class UnrollForward:
    """Validated batch -> learner logits/values and the V-trace targets.

    Args:
        net: the policy-value network (feed-forward, or with an LSTM core when ``recurrent``).
        recurrent: rerun the network's core over each unroll from its carried start state.
        continuous: Box actions (a Gaussian head; unrolls carry behaviour log-probabilities).
        reward_scale: rewards are multiplied by this before V-trace.
        vtrace_args: V-trace's clip thresholds and lambda (keyword arguments of
            :func:`rlfleet.math.vtrace_from_logits`).
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        recurrent: bool,
        continuous: bool,
        reward_scale: float,
        vtrace_args: Mapping[str, Any],
    ) -> None:
        self.net = net
        self.recurrent = recurrent
        self.continuous = continuous
        self.reward_scale = reward_scale
        self.vtrace_args = dict(vtrace_args)

    def __call__(self, batch: Mapping[str, object]) -> dict:
        """``logits`` ``[T, B, A]``, ``values`` ``[T, B]`` (with graph), ``vt`` (V-trace
        returns), ``actions``, the flat ``obs`` ``[T * B, ...]`` and ``t_b``."""
        b_ = unroll_tensors(
            batch,
            continuous=self.continuous,
            lstm_size=self.net.lstm_size if self.recurrent else None,
        )
        obs, index = b_["obs"], b_["final_obs_index"]
        t, b = b_["action"].shape[:2]
        flat_obs = obs.reshape(((t + 1) * b, *obs.shape[2:]))
        if self.recurrent:
            logits, values, final_values = self._recurrent_pass(b_, t, b)
        else:
            # One forward pass over all T+1 observations and the truncations' final observations.
            logits_all, values_all = self.net(torch.cat([flat_obs, b_["final_obs"].to(obs.dtype)]))
            logits = logits_all[: (t + 1) * b].reshape(t + 1, b, -1)[:t]
            values = values_all[: (t + 1) * b].reshape(t + 1, b)
            final_values = values_all[(t + 1) * b :].detach()
        num_actions = logits.shape[-1]
        if not self.continuous and b_["behaviour_logits"].shape[-1] != num_actions:
            raise ConfigError(
                f"behaviour_logits has {b_['behaviour_logits'].shape[-1]} actions; the network"
                f" has {num_actions}"
            )

        reward = b_["reward"].float()
        if self.reward_scale != 1.0:
            reward = reward * self.reward_scale
        discount = b_["discount"].float()
        if len(index):
            # Truncated step: bootstrap from the true final observation, then cut the trace
            # (see rlfleet.agents.impala.unrolls for why this is exact).
            reward = reward.clone()
            discount = discount.clone()
            ti, bi = index[:, 0], index[:, 1]
            reward[ti, bi] += discount[ti, bi] * final_values
            discount[ti, bi] = 0.0

        if self.continuous:
            vt = self._vtrace_of_log_probs(b_, logits, discount, reward, values, t)
        else:
            vt = vtrace_from_logits(
                behaviour_logits=b_["behaviour_logits"].float(),
                target_logits=logits,
                actions=b_["action"].long(),
                discounts=discount,
                rewards=reward,
                values=values[:t].detach(),
                bootstrap_value=values[t].detach(),
                **self.vtrace_args,
            )
        return {
            "logits": logits,
            "values": values[:t],
            "vt": vt,
            "actions": b_["action"].float() if self.continuous else b_["action"].long(),
            "obs": flat_obs[: t * b],
            "t_b": (t, b),
        }

    def _recurrent_pass(
        self, b_: dict[str, torch.Tensor], t: int, b: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits ``[T, B, A]``, values ``[T+1, B]`` (with graph) and the detached values of the
        truncations' final observations, rerunning the core from the unrolls' start states."""
        obs, index = b_["obs"], b_["final_obs_index"]
        # Zero the state before obs[t] wherever the episode ended at step t-1 (the actor did the
        # same); obs[0]'s start state was already reset by the actor.
        reset = torch.zeros(t + 1, b, dtype=torch.bool)
        reset[1:] = b_["done"].bool()
        logits_all, values, states_after = self.net.unroll(obs, b_[CORE_STATE_KEY], reset)
        final_values = values.new_zeros(len(index))
        if len(index):
            with torch.no_grad():
                # x_final follows obs[t] in the same episode: it sees the state after step t,
                # which unroll returns because done[t] resets a row before obs[t+1]. Truncations
                # are rare (one per time limit), so gathering them one by one is cheap.
                after = torch.stack(
                    [states_after[int(ti)][:, int(bi)] for ti, bi in index.tolist()], dim=1
                )
                _, final_values, _ = self.net(b_["final_obs"].to(obs.dtype), after)
        return logits_all[:t], values, final_values

    def _vtrace_of_log_probs(
        self,
        b_: dict[str, torch.Tensor],
        params: torch.Tensor,
        discount: torch.Tensor,
        reward: torch.Tensor,
        values: torch.Tensor,
        t: int,
    ) -> VTraceFromLogitsReturns:
        """V-trace for Box actions: ``log rho = log pi(a|x) - log mu(a|x)`` from the head's
        log-probability of the raw sample and the behaviour's, sent with the unroll."""
        behaviour = b_["behaviour_log_prob"].float()
        target = self.net.policy.log_prob(params, b_["action"].float())
        log_rhos = target - behaviour
        returns = vtrace_from_importance_weights(
            log_rhos=log_rhos,
            discounts=discount,
            rewards=reward,
            values=values[:t].detach(),
            bootstrap_value=values[t].detach(),
            **self.vtrace_args,
        )
        return VTraceFromLogitsReturns(
            returns.vs, returns.pg_advantages, log_rhos, behaviour, target
        )
