"""Configuration of an IMPALA run (Espeholt et al. 2018), with optional kickstarting.

The run, env, eval and transport sections are shared by every agent
(:mod:`rlfleet.agents.common.sections`), so budgets, environments, evaluation, the solve criterion and the data plane are configured the
same way for every algorithm. The sections below are IMPALA's: the policy-value network, the
V-trace objective, actors that send unrolls, the learner's optimizer, and the kickstarting teacher.

Defaults follow the IMPALA paper where it gives one (RMSProp, rho_bar = c_bar = 1, baseline cost
0.5, entropy cost 0.01, gradient-norm clip 40); presets override them per task.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlfleet.agents.common.sections import (
    EnvSection,
    EvalSection,
    RunSection,
    TransportSection,
    check_algorithm,
    check_choice,
    check_layers,
    fill_sections,
    head_field,
    run_section,
)
from rlfleet.config import field
from rlfleet.errors import ConfigError
from rlfleet.math.schedules import KICKSTART_SCHEDULES, REDUCTIONS, kickstart_weight
from rlfleet.models.names import CORES, SQUASHES, TORSOS

ALGORITHM = "impala"
#: Valid ``learner.optimizer`` values (:class:`~rlfleet.agents.impala.update.ImpalaUpdate`).
OPTIMIZERS = ("rmsprop", "adam")


def _clip(value: float) -> float | None:
    """A clip threshold from the config: 0 means no clipping (None for the algorithm)."""
    return None if value == 0 else float(value)


@dataclass
class PolicyModelSection:
    torso: str = field("auto", "Network torso: auto, mlp, minatar or nature.")
    hidden: tuple[int, ...] = field((256, 256), "Hidden layer sizes of the MLP torso.", ge=1)
    core: str = field(
        "none",
        "Core between torso and heads: none (feed-forward) or lstm (its state travels with each "
        "unroll and is reset at episode starts).",
    )
    lstm_size: int = field(256, "Width of the LSTM core's h and c (core = lstm only).", ge=1)
    squash: str = head_field("squash")
    log_std_init: float = head_field("log_std_init")
    state_dependent_std: bool = head_field("state_dependent_std")
    critic_inputs: int = head_field("critic_inputs")

    def validate(self) -> None:
        check_choice("model.torso", self.torso, TORSOS)
        check_choice("model.core", self.core, CORES)
        check_choice("model.squash", self.squash, SQUASHES)
        check_layers("model.hidden", self.hidden)


@dataclass
class ImpalaAlgoSection:
    gamma: float = field(0.99, "Discount factor.", ge=0, le=1)
    unroll_length: int = field(
        20, "Steps per unroll (T); each unroll carries T+1 observations.", ge=1
    )
    clip_rho_threshold: float = field(1.0, "V-trace rho_bar (0 = no clipping).", ge=0)
    clip_c_threshold: float = field(1.0, "V-trace c_bar (0 = no clipping).", ge=0)
    clip_pg_rho_threshold: float = field(
        1.0, "Clip of the importance weight in the policy-gradient advantage (0 = none).", ge=0
    )
    trace_lambda: float = field(
        1.0, "V-trace lambda: c_i = lambda * min(c_bar, pi/mu).", ge=0, le=1
    )
    pg_cost: float = field(1.0, "Weight of the policy-gradient loss.", ge=0)
    baseline_cost: float = field(0.5, "Weight of the baseline (value) loss.", ge=0)
    entropy_cost: float = field(0.01, "Weight of the entropy bonus.", ge=0)
    reward_scale: float = field(
        1.0,
        "Rewards are multiplied by this in the learner's update (values are learned in scaled "
        "units; reported returns stay raw). 0.1 lets an LSTM core learn CartPole's values.",
        gt=0,
    )
    reduction: str = field(
        "sum",
        "How losses reduce over the T*B steps of a batch: sum (IMPALA reference) or mean "
        "(scale independent of T and B).",
    )

    def validate(self) -> None:
        check_choice("algo.reduction", self.reduction, REDUCTIONS)


@dataclass
class ImpalaActorSection:
    num_actors: int = field(0, "Actor processes (0 = sized to the machine's cores).", ge=0)
    param_fetch_interval: int = field(
        1,
        "Unrolls between checks for newer parameters (1 = before every unroll, as in IMPALA).",
        ge=1,
    )
    torch_threads: int = field(1, "torch intra-op threads in each actor process.", ge=1)


@dataclass
class ImpalaLearnerSection:
    batch_size: int = field(
        4,
        "Unrolls per update (B). Each unroll holds env.envs_per_actor trajectories of T steps, "
        "so one update sees B * envs_per_actor * T steps.",
        ge=1,
    )
    optimizer: str = field("rmsprop", "Optimizer: rmsprop (IMPALA paper) or adam.")
    lr: float = field(6e-4, "Learning rate.", gt=0)
    eps: float = field(0.01, "Optimizer epsilon (RMSProp 0.01 as in IMPALA; ~1e-8 for Adam).", gt=0)
    rmsprop_alpha: float = field(0.99, "RMSProp smoothing constant.", ge=0, le=1)
    rmsprop_momentum: float = field(0.0, "RMSProp momentum.", ge=0, lt=1)
    grad_clip: float = field(40.0, "Global gradient-norm clip.", gt=0)
    lr_decay_updates: int = field(
        0, "Decay the learning rate linearly to 0 over this many updates (0 = constant).", ge=0
    )
    publish_interval: int = field(1, "Updates between parameter publications (P).", ge=1)
    prefetch_batches: int = field(
        1,
        "Stacked batches kept ready ahead of the update loop. Small on purpose: every queued "
        "unroll adds policy lag.",
        ge=1,
    )
    torch_threads: int = field(1, "torch intra-op threads in the learner process.", ge=1)
    max_updates: int = field(0, "Stop after this many updates (0 = no limit).", ge=0)

    def validate(self) -> None:
        check_choice("learner.optimizer", self.optimizer, OPTIMIZERS)


@dataclass
class KickstartSection:
    teacher: str = field(
        "",
        "Teacher checkpoint folder or run folder (its latest checkpoint); empty = no "
        "kickstarting. `rlfleet train --teacher PATH` sets it. Ape-X teachers act as "
        "softmax(Q / temperature); IMPALA teachers with their policy logits / temperature.",
    )
    schedule: str = field(
        "linear", "How lambda_k changes with the update count: constant, linear (to 0) or step."
    )
    weight: float = field(1.0, "lambda_k at the first update (lambda0).", ge=0)
    decay_updates: int = field(2000, "linear: updates until lambda_k reaches 0.", ge=1)
    boundaries: tuple[int, ...] = field(
        (), "step: update counts at which lambda_k drops, strictly increasing.", ge=1
    )
    values: tuple[float, ...] = field(
        (), "step: lambda_k from each boundary on (non-increasing, one per boundary).", ge=0
    )
    temperature: float = field(
        1.0,
        "The teacher's logits are its scores divided by this (Q-values for Ape-X teachers).",
        gt=0,
    )

    def validate(self) -> None:
        check_choice("kickstart.schedule", self.schedule, KICKSTART_SCHEDULES)
        try:
            kickstart_weight(0, **self.schedule_args())
        except ConfigError as exc:
            raise ConfigError(f"kickstart: {exc}") from exc

    def schedule_args(self) -> dict:
        """Keyword arguments of :func:`rlfleet.math.kickstart_weight` (and ImpalaUpdate)."""
        return {
            "schedule": self.schedule,
            "lambda0": self.weight,
            "decay_steps": self.decay_updates,
            "boundaries": self.boundaries,
            "values": self.values,
        }


@dataclass
class ImpalaConfig:
    """Everything an IMPALA run needs; written to the run folder as config.toml."""

    run: RunSection = field(None, "Run budget, seeds, checkpoints (run.algorithm = impala).")
    env: EnvSection = field(None, "Environment.")
    model: PolicyModelSection = field(None, "Policy-value network.")
    algo: ImpalaAlgoSection = field(None, "V-trace targets and the loss.")
    actor: ImpalaActorSection = field(None, "Actors.")
    learner: ImpalaLearnerSection = field(None, "Learner.")
    kickstart: KickstartSection = field(None, "Kickstarting: distillation from a teacher.")
    eval: EvalSection = field(None, "Evaluator.")
    transport: TransportSection = field(None, "Data plane between the roles.")

    def __post_init__(self) -> None:
        fill_sections(self, run=run_section(ALGORITHM))

    def validate(self) -> None:
        check_algorithm(self, ALGORITHM, "an IMPALA config")

    def update_args(self) -> dict:
        """Keyword arguments of :class:`rlfleet.agents.impala.update.ImpalaUpdate` (no teacher)."""
        a, lc = self.algo, self.learner
        return {
            "optimizer": lc.optimizer,
            "lr": lc.lr,
            "eps": lc.eps,
            "rmsprop_alpha": lc.rmsprop_alpha,
            "rmsprop_momentum": lc.rmsprop_momentum,
            "grad_clip": lc.grad_clip,
            "pg_cost": a.pg_cost,
            "baseline_cost": a.baseline_cost,
            "entropy_cost": a.entropy_cost,
            "clip_rho_threshold": _clip(a.clip_rho_threshold),
            "clip_c_threshold": _clip(a.clip_c_threshold),
            "clip_pg_rho_threshold": _clip(a.clip_pg_rho_threshold),
            "lambda_": a.trace_lambda,
            "reduction": a.reduction,
            "reward_scale": a.reward_scale,
        }
