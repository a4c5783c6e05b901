"""IMPALA (Espeholt et al. 2018) with optional kickstarting (Schmitt et al. 2018).

The learner's update (:class:`ImpalaUpdate`): losses and the gradient step on what
:class:`~rlfleet.agents.impala.targets.UnrollForward` computes (logits, values, V-trace targets);
the unrolls it learns from are described in :mod:`rlfleet.agents.impala.unrolls`. It knows
nothing of processes or transports: the learner core feeds it stacked unrolls.

Networks may be feed-forward or have an LSTM core (:class:`rlfleet.models.LSTMPolicyValueNetwork`):
then each unroll carries the core state before its first observation, and the learner reruns the
core over the unroll from that state with its own parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from rlfleet.agents.common.networks import logits_of
from rlfleet.agents.common.optim import Adam, RMSprop, make_adam
from rlfleet.agents.impala.config import OPTIMIZERS
from rlfleet.agents.impala.targets import UnrollForward
from rlfleet.errors import ConfigError
from rlfleet.math import (
    baseline_loss,
    distillation_loss,
    entropy_loss,
    kickstart_weight,
    policy_gradient_loss,
)
from rlfleet.math.policy_losses import REDUCTIONS
from rlfleet.models.heads import is_continuous_head
from rlfleet.models.recurrent import is_recurrent

__all__ = ["OPTIMIZERS", "ImpalaUpdate"]


Teacher = Callable[[torch.Tensor], "torch.Tensor | tuple[torch.Tensor, ...]"]


def _make_optimizer(
    name: str, params: Sequence[nn.Parameter], lr: float, eps: float, alpha: float, momentum: float
) -> Adam | RMSprop:
    if name == "adam":
        return make_adam(params, lr=lr, eps=eps)
    return RMSprop(params, lr=lr, alpha=alpha, eps=eps, momentum=momentum)


class ImpalaUpdate:
    """The learner's step: V-trace targets, policy-gradient, baseline, entropy, kickstarting.

    ``total = pg_cost * pg + baseline_cost * baseline + entropy_cost * (-entropy) + lambda_k * H(T || S)``,
    each term from :mod:`rlfleet.math.policy_losses` (``reduction`` over all ``T * B`` steps).

    Args:
        net: policy-value network, ``net(obs [N, *obs]) -> (logits [N, A], value [N])``, or one
            with an LSTM core (:class:`rlfleet.models.LSTMPolicyValueNetwork`); batches for the
            latter carry ``core_state`` ``[2, B, H]``.
        optimizer: ``"rmsprop"`` (IMPALA paper) or ``"adam"``.
        lr: learning rate.
        eps: optimizer epsilon (RMSProp 0.01 as in the IMPALA reference; use ~1e-8 for Adam).
        rmsprop_alpha, rmsprop_momentum: RMSProp smoothing constant and momentum.
        grad_clip: global gradient-norm clip.
        pg_cost, baseline_cost, entropy_cost: weights of the policy-gradient loss (1; 0 leaves
            pure distillation, e.g. to test it), the baseline loss and the entropy bonus.
        clip_rho_threshold, clip_c_threshold, clip_pg_rho_threshold, lambda_: V-trace
            ``rho_bar``, ``c_bar``, the policy-gradient clip and lambda (None: no clipping).
        reduction: ``"sum"`` (IMPALA reference) or ``"mean"`` over steps.
        reward_scale: rewards are multiplied by this in the update (values are learned in the
            scaled units; episode returns elsewhere stay raw). An LSTM core's bounded output
            learns values of order 1 far faster than of order 100.
        teacher: kickstarting teacher, any callable mapping observations to logits (or to a tuple
            whose first element is the logits), e.g. a network of another architecture. It runs
            under ``no_grad`` and is never updated.
        kickstart_schedule, kickstart_lambda, kickstart_decay_steps, kickstart_boundaries,
            kickstart_values: the ``lambda_k`` schedule, see
            :func:`rlfleet.math.kickstart_weight`; evaluated at the update count.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        optimizer: str = "rmsprop",
        lr: float = 6e-4,
        eps: float = 0.01,
        rmsprop_alpha: float = 0.99,
        rmsprop_momentum: float = 0.0,
        grad_clip: float = 40.0,
        pg_cost: float = 1.0,
        baseline_cost: float = 0.5,
        entropy_cost: float = 0.01,
        clip_rho_threshold: float | None = 1.0,
        clip_c_threshold: float | None = 1.0,
        clip_pg_rho_threshold: float | None = 1.0,
        lambda_: float = 1.0,
        reduction: str = "sum",
        reward_scale: float = 1.0,
        teacher: Teacher | None = None,
        kickstart_schedule: str = "constant",
        kickstart_lambda: float = 1.0,
        kickstart_decay_steps: int | None = None,
        kickstart_boundaries: Sequence[int] = (),
        kickstart_values: Sequence[float] = (),
    ) -> None:
        if optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
        if reduction not in REDUCTIONS:
            raise ConfigError(f"unknown reduction {reduction!r}; valid: {', '.join(REDUCTIONS)}")
        for name, value in (
            ("lr", lr),
            ("grad_clip", grad_clip),
            ("pg_cost", pg_cost),
            ("baseline_cost", baseline_cost),
            ("entropy_cost", entropy_cost),
            ("reward_scale", reward_scale),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ConfigError(f"{name} must be a number >= 0, got {value!r}")
        if teacher is not None and not callable(teacher):
            raise ConfigError(f"teacher must be callable (obs -> logits), got {type(teacher)}")
        self.net = net
        self.recurrent = is_recurrent(net)
        # Box actions: a Gaussian head; unrolls carry behaviour log-probabilities, not logits
        self.continuous = is_continuous_head(getattr(net, "policy", None))
        if self.continuous and teacher is not None:
            raise ConfigError(
                "kickstarting distils a teacher's action probabilities over Discrete actions; "
                "this network acts in a Box (set kickstart.teacher = '')"
            )
        self.optimizer = _make_optimizer(
            optimizer, list(net.parameters()), lr, eps, rmsprop_alpha, rmsprop_momentum
        )
        self.grad_clip = float(grad_clip)
        self.reward_scale = float(reward_scale)
        self.pg_cost = float(pg_cost)
        self.baseline_cost = float(baseline_cost)
        self.entropy_cost = float(entropy_cost)
        self.vtrace_args = {
            "clip_rho_threshold": clip_rho_threshold,
            "clip_c_threshold": clip_c_threshold,
            "clip_pg_rho_threshold": clip_pg_rho_threshold,
            "lambda_": lambda_,
        }
        self.reduction = reduction
        self.teacher = teacher
        if isinstance(teacher, nn.Module):
            # Belt and braces: no_grad already keeps gradients out; this also makes it explicit.
            teacher.requires_grad_(False)
        self.kickstart_args = {
            "schedule": kickstart_schedule,
            "lambda0": kickstart_lambda,
            "decay_steps": kickstart_decay_steps,
            "boundaries": tuple(kickstart_boundaries),
            "values": tuple(kickstart_values),
        }
        if teacher is not None:
            kickstart_weight(0, **self.kickstart_args)  # validate the schedule now, not later
        self._forward = UnrollForward(
            net,
            recurrent=self.recurrent,
            continuous=self.continuous,
            reward_scale=self.reward_scale,
            vtrace_args=self.vtrace_args,
        )
        self.updates = 0

    def kickstart_lambda(self) -> float:
        """``lambda_k`` for the next update (0 without a teacher)."""
        if self.teacher is None:
            return 0.0
        return kickstart_weight(self.updates, **self.kickstart_args)

    def _policy_terms(self, fw: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(pg, entropy_loss, mean entropy)``: the policy-gradient and entropy terms, from
        logits (Discrete) or the Gaussian head's log-probabilities and entropy (Box)."""
        logits, vt = fw["logits"], fw["vt"]
        if not self.continuous:
            pg = policy_gradient_loss(logits, fw["actions"], vt.pg_advantages, self.reduction)
            ent = entropy_loss(logits, self.reduction)
            with torch.no_grad():
                mean_entropy = -entropy_loss(logits.detach(), "mean")
            return pg, ent, mean_entropy
        reduce = torch.sum if self.reduction == "sum" else torch.mean
        pg = reduce(-vt.target_action_log_probs * vt.pg_advantages.detach())
        entropy = self.net.policy.entropy(logits)
        return pg, reduce(-entropy), entropy.detach().mean()

    @torch.no_grad()
    def vtrace_targets(self, batch: Mapping[str, object]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(vs, pg_advantages)`` ``[T, B]`` for ``batch`` under the current parameters.

        Exactly what :meth:`step` regresses onto and weights the policy gradient by (truncation
        bootstraps included); no parameter changes. For diagnostics and tests.
        """
        fw = self._forward(batch)
        return fw["vt"].vs, fw["vt"].pg_advantages

    @torch.no_grad()
    def log_rhos(self, batch: Mapping[str, object]) -> torch.Tensor:
        """``log(pi(a_t|x_t) / mu(a_t|x_t))`` ``[T, B]`` under the current parameters: zero
        wherever the learner reproduces the actor's policy (same parameters, and for an LSTM
        core the same state). For diagnostics and tests."""
        return self._forward(batch)["vt"].log_rhos

    def step(self, batch: Mapping[str, object]) -> dict[str, float]:
        """One gradient step on a batch of unrolls (:func:`stack_unrolls` layout, ``[T, B]``).

        Returns scalar stats, all computed *before* the parameter change: ``loss``,
        ``pg_loss``, ``baseline_loss``, ``entropy_loss`` (unweighted terms), ``distill_loss``,
        ``kickstart_lambda``, ``entropy`` (mean nats per step), ``rho_clip_fraction`` (share of
        steps with ``rho > rho_bar``), ``pg_rho_clip_fraction``, ``grad_norm`` (before clipping),
        ``value_mean``, ``vs_mean``. Policy lag is the caller's to measure.

        Raises:
            ConfigError: a missing key or a shape mismatch (the message names both shapes).
        """
        fw = self._forward(batch)
        logits, values, vt = fw["logits"], fw["values"], fw["vt"]
        pg, ent, mean_entropy = self._policy_terms(fw)
        base = baseline_loss(vt.vs, values, self.reduction)
        total = self.pg_cost * pg + self.baseline_cost * base + self.entropy_cost * ent

        lam = self.kickstart_lambda()
        distill = torch.zeros(())
        if self.teacher is not None:
            t, b = fw["t_b"]
            with torch.no_grad():
                teacher_logits = logits_of(self.teacher(fw["obs"])).reshape(t, b, -1)
            distill = distillation_loss(teacher_logits, logits, self.reduction)
            if lam > 0:
                total = total + lam * distill

        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.grad_clip)
        self.optimizer.step()
        self.updates += 1

        log_rhos = vt.log_rhos.detach()
        return {
            "loss": float(total.detach()),
            "pg_loss": float(pg.detach()),
            "baseline_loss": float(base.detach()),
            "entropy_loss": float(ent.detach()),
            "distill_loss": float(distill.detach()),
            "kickstart_lambda": float(lam),
            "entropy": float(mean_entropy),
            "rho_clip_fraction": _clip_fraction(log_rhos, self.vtrace_args["clip_rho_threshold"]),
            "pg_rho_clip_fraction": _clip_fraction(
                log_rhos, self.vtrace_args["clip_pg_rho_threshold"]
            ),
            "grad_norm": float(grad_norm),
            "value_mean": float(values.detach().mean()),
            "vs_mean": float(vt.vs.mean()),
        }


def _clip_fraction(log_rhos: torch.Tensor, threshold: float | None) -> float:
    """Share of steps whose importance ratio the threshold clips (0 without clipping)."""
    if threshold is None:
        return 0.0
    return float((log_rhos > float(np.log(threshold))).float().mean())
