"""DQfD and Ape-X DQfD as a loss on the Ape-X DQN update (composition, no subclass).

:func:`dqfd_loss` is passed to :class:`~rlfleet.agents.apex.update.DQNUpdate` in place of its
double-DQN loss; the update keeps owning the networks, Adam, clipping and the target sync. The
loss is composed from the pure functions of :mod:`rlfleet.math.dqfd` and :mod:`rlfleet.math.dqn`
(reference: ../shared/reference/algorithms.md, "DQfD" and "Ape-X DQfD")::

    J = lambda0 J_DQ + lambda1 J_n + lambda2 J_E + lambda3 J_L2 + lambda_tc L_TC

- ``J_DQ``: 1-step double-DQN Huber loss on ``reward_1, discount_1, next_obs_1``;
- ``J_n``: n-step double-DQN Huber loss on ``reward, discount, next_obs`` (the Ape-X layout);
- ``J_E``: large-margin loss, only on items whose ``imitate`` (or, if absent, ``is_demo``) is true;
- ``J_L2``: sum of squares of all online parameters;
- ``L_TC``: Ape-X DQfD's temporal-consistency loss on the n-step next state.

Every per-item term is multiplied by the importance weights and averaged over the whole batch
(the convention of :func:`rlfleet.math.dqn.weighted_huber_loss`). Batches come from one replay
(DQfD: demonstrations in the reserved region) or from two replays mixed at a fixed ratio
(:mod:`rlfleet.agents.apex.mixed`, Ape-X DQfD).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from rlfleet.agents.apex.update import DQNUpdate, Loss, to_torch
from rlfleet.errors import ConfigError
from rlfleet.math.dqfd import (
    l2_regularization,
    large_margin_loss,
    temporal_consistency_loss,
    transformed_double_q_target,
)
from rlfleet.math.dqn import double_q_target, td_errors, weighted_huber_loss
from rlfleet.replay.storage import Sample


@dataclass(frozen=True)
class DQfDConfig:
    """Loss weights and variant switches. Use :meth:`dqfd` or :meth:`apex_dqfd` for the papers.

    Attributes:
        one_step_weight: lambda0 on ``J_DQ`` (1 in DQfD). 0 drops the term and its fields.
        n_step_weight: lambda1 on ``J_n`` (1 in DQfD).
        margin_weight: lambda2 on ``J_E`` (1 in DQfD).
        l2_weight: lambda3 on ``J_L2`` (1e-5 in DQfD).
        margin: ``l(a_E, a)`` for ``a != a_E``: 0.8 (DQfD), sqrt(0.999) (Ape-X DQfD).
        transformed: use the transformed Bellman operator h / h^-1 (Ape-X DQfD) for both TD terms.
        rescale_eps: eps of h (1e-2).
        tc_weight: weight of the temporal-consistency loss (0 = off).
        gamma: the discount the transitions were built with. The loss does not use it (discounts
            are stored per item); it is here so one config object describes the variant.
        double: double-DQN action selection.
        huber_delta: Huber threshold of the TD and TC losses.
    """

    one_step_weight: float = 1.0
    n_step_weight: float = 1.0
    margin_weight: float = 1.0
    l2_weight: float = 1e-5
    margin: float = 0.8
    transformed: bool = False
    rescale_eps: float = 1e-2
    tc_weight: float = 0.0
    gamma: float = 0.99
    double: bool = True
    huber_delta: float = 1.0

    def __post_init__(self) -> None:
        for name in (
            "one_step_weight",
            "n_step_weight",
            "margin_weight",
            "l2_weight",
            "margin",
            "tc_weight",
            "rescale_eps",
        ):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"DQfDConfig.{name} must be a finite number >= 0, got {value!r}")
        if self.one_step_weight == 0 and self.n_step_weight == 0:
            raise ConfigError(
                "DQfDConfig needs a TD term: one_step_weight and n_step_weight are both 0"
            )
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError(f"DQfDConfig.gamma must be in [0, 1], got {self.gamma!r}")

    @classmethod
    def dqfd(cls, gamma: float = 0.99) -> DQfDConfig:
        """Hester et al. 2018: lambda1 = lambda2 = 1, lambda3 = 1e-5, margin 0.8 (reference)."""
        return cls(gamma=gamma)

    @classmethod
    def apex_dqfd(cls) -> DQfDConfig:
        """Pohlen et al. 2018, per the reference: h / h^-1 instead of reward clipping, the TC loss,
        gamma 0.999, margin sqrt(0.999).

        Not fixed by the reference and chosen here after the paper's loss (n-step TD + TC +
        imitation): no 1-step term, no L2, weights 1. The imitation loss is restricted to the
        best expert episodes through the ``imitate`` field (:func:`imitation_mask`).
        """
        return cls(
            one_step_weight=0.0,
            n_step_weight=1.0,
            margin_weight=1.0,
            l2_weight=0.0,
            margin=math.sqrt(0.999),
            transformed=True,
            tc_weight=1.0,
            gamma=0.999,
        )


def _td(
    net: torch.nn.Module,
    target_net: torch.nn.Module,
    q: torch.Tensor,
    action: torch.Tensor,
    reward: torch.Tensor,
    discount: torch.Tensor,
    next_obs: torch.Tensor,
    config: DQfDConfig,
) -> tuple[torch.Tensor, torch.Tensor]:
    """TD errors ``[B]`` of one (1-step or n-step) target and the online next-state Q ``[B, A]``."""
    next_q_online = net(next_obs)
    with torch.no_grad():
        next_q_target = target_net(next_obs)
    selector = next_q_online.detach()
    if config.transformed:
        target = transformed_double_q_target(
            reward, discount, selector, next_q_target, config.rescale_eps, config.double
        )
    else:
        target = double_q_target(reward, discount, selector, next_q_target, config.double)
    return td_errors(q, action, target), next_q_online


def dqfd_loss(
    net: torch.nn.Module,
    target_net: torch.nn.Module,
    batch: Mapping[str, torch.Tensor],
    weights: torch.Tensor,
    config: DQfDConfig,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The composed DQfD loss (scalar, differentiable w.r.t. ``net``) and its parts.

    ``batch`` needs ``obs, action`` and, per enabled term: ``reward, discount, next_obs``
    (n-step), ``reward_1, discount_1, next_obs_1`` (1-step), ``imitate`` or ``is_demo``
    (margin). A batch with neither mask field gets no margin loss (all agent data).

    The returned parts are detached: ``j_dq, j_n, j_e, l2, tc`` (unweighted, each already
    reduced) and ``abs_td``: the priority per item, ``|n-step TD|`` when the n-step term is on
    (the Ape-X priority, as actors compute it) else ``|1-step TD|``.
    """
    obs, action = batch["obs"], batch["action"]
    q = net(obs)
    zero = q.new_zeros(())
    parts: dict[str, torch.Tensor] = {}
    loss = zero
    td_n = td_1 = None
    if config.n_step_weight > 0:
        td_n, next_q_n = _td(
            net,
            target_net,
            q,
            action,
            batch["reward"],
            batch["discount"],
            batch["next_obs"],
            config,
        )
        j_n = weighted_huber_loss(td_n, weights, config.huber_delta)
        loss = loss + config.n_step_weight * j_n
        parts["j_n"] = j_n
    if config.one_step_weight > 0:
        td_1, _ = _td(
            net,
            target_net,
            q,
            action,
            batch["reward_1"],
            batch["discount_1"],
            batch["next_obs_1"],
            config,
        )
        j_dq = weighted_huber_loss(td_1, weights, config.huber_delta)
        loss = loss + config.one_step_weight * j_dq
        parts["j_dq"] = j_dq
    mask = batch.get("imitate", batch.get("is_demo"))
    if config.margin_weight > 0 and mask is not None:
        per_item = large_margin_loss(q, action, mask, config.margin)
        j_e = (weights * per_item).mean()
        loss = loss + config.margin_weight * j_e
        parts["j_e"] = j_e
    if config.l2_weight > 0:
        l2 = l2_regularization(net.parameters())
        loss = loss + config.l2_weight * l2
        parts["l2"] = l2
    if config.tc_weight > 0:
        # TC on the n-step next state (1-step if n-step is off). "Previous parameters" are the
        # target network's: a copy taken right before this update would equal the current
        # parameters at the forward pass and give a zero loss and gradient.
        key = "next_obs" if td_n is not None else "next_obs_1"
        next_obs = batch[key]
        next_q_current = next_q_n if td_n is not None else net(next_obs)
        with torch.no_grad():
            next_q_previous = target_net(next_obs)
        tc = temporal_consistency_loss(
            next_q_current,
            next_q_previous,
            next_q_current.detach().argmax(dim=1),
            weights,
            config.huber_delta,
        )
        loss = loss + config.tc_weight * tc
        parts["tc"] = tc
    priority_td = td_n if td_n is not None else td_1
    assert priority_td is not None  # DQfDConfig guarantees one TD term
    parts = {k: v.detach() for k, v in parts.items()}
    parts["abs_td"] = priority_td.detach().abs()
    if td_1 is not None:
        parts["abs_td_1"] = td_1.detach().abs()
    parts["q_mean"] = q.detach().mean()
    return loss, parts


def dqfd_update_loss(config: DQfDConfig) -> Loss:
    """:func:`dqfd_loss` with ``config`` bound: the ``loss`` argument of a DQNUpdate."""
    return functools.partial(dqfd_loss, config=config)


class _Replay(Protocol):
    def sample(self, batch_size: int, beta: float) -> Sample: ...

    def update_priorities(
        self, indices: np.ndarray, priorities: np.ndarray, generations: np.ndarray
    ) -> int: ...


def pretrain(
    update: DQNUpdate,
    replay: _Replay,
    steps: int,
    batch_size: int,
    beta: float = 0.4,
    on_step: Callable[[int, dict[str, object]], Any] | None = None,
) -> dict[str, object]:
    """DQfD phase I: ``steps`` updates on demonstrations only, no environment interaction.

    ``replay`` holds only demonstration transitions (e.g. a PrioritizedReplay filled with
    ``add_reserved``); priorities are updated after every step as in phase II. ``on_step(i,
    stats)`` is called after each update (logging, early stop by raising). Returns the last
    stats.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps must be an integer >= 1, got {steps!r}")
    stats: dict[str, object] = {}
    for i in range(steps):
        sample = replay.sample(batch_size, beta)
        stats = update.step(to_torch(sample.fields), torch.from_numpy(sample.weights))
        replay.update_priorities(sample.indices, stats["abs_td"], sample.generations)
        if on_step is not None:
            on_step(i, stats)
    return stats
