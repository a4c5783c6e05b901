"""Configuration of an Ape-X DPG run (Horgan et al. 2018, section 4.2): the Ape-X fleet
(prioritized replay, actor-computed initial priorities, n-step returns, per-actor exploration)
with a deterministic policy gradient learner, DDPG (Lillicrap et al. 2016) with TD3's three
changes (Fujimoto et al. 2018) on by default.

The ``run``, ``env``, ``eval`` and ``transport`` sections are shared by every agent, ``replay``
by the Ape-X family (:mod:`rlfleet.agents.common.prioritized`). Defaults follow TD3's paper
(Adam 1e-3 for both networks, tau 0.005, target noise 0.2 clipped at 0.5, actor every 2nd
update, batch 256, 256-unit MLPs); presets override them per task.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlfleet.agents.common.prioritized import ReplaySection
from rlfleet.agents.common.sections import (
    EnvSection,
    EvalSection,
    RunSection,
    TransportSection,
    check_choice,
    fill_sections,
)
from rlfleet.config import field

NOISE_PER = ("actor", "env")


@dataclass
class ModelSection:
    hidden: tuple[int, ...] = field((256, 256), "Hidden sizes of the actor and critic MLPs.", ge=1)


@dataclass
class AlgoSection:
    n_step: int = field(1, "n of the n-step return.", ge=1)
    gamma: float = field(0.99, "Discount factor.", ge=0, le=1)
    twin_critics: bool = field(True, "TD3: two critics, the target takes their minimum.")
    target_noise: float = field(
        0.2,
        "TD3 target policy smoothing: std of the noise added to the target action, as a "
        "fraction of the action half-range (0 = off, plain DDPG targets).",
        ge=0,
    )
    target_noise_clip: float = field(
        0.5, "TD3: the smoothing noise is clipped to +-this (fraction of the half-range).", ge=0
    )
    policy_delay: int = field(
        2, "TD3: the actor and the target networks update every this many critic updates.", ge=1
    )
    tau: float = field(0.005, "Polyak averaging rate of the target networks.", gt=0, le=1)


@dataclass
class ActorSection:
    num_actors: int = field(0, "Actor processes (0 = sized to the machine's cores).", ge=0)
    noise: float = field(
        0.4,
        "Base Gaussian exploration std (fraction of the action half-range) of the ladder "
        "sigma_i = noise ** (1 + noise_alpha * i / (N - 1)), like Ape-X's epsilons.",
        ge=0,
    )
    noise_alpha: float = field(
        7.0, "Exponent spread of the per-explorer noise scales (0 = one scale for all).", ge=0
    )
    noise_per: str = field(
        "actor", "One noise scale per 'actor' (paper) or per 'env' across the fleet."
    )
    push_size: int = field(
        64, "Transitions an actor buffers locally before computing priorities and pushing.", ge=1
    )
    param_fetch_interval: int = field(
        100, "Actor batch steps between checks for newer parameters.", ge=1
    )
    random_steps: int = field(
        0, "Uniformly random actions for each actor's first this many batch steps.", ge=0
    )
    torch_threads: int = field(1, "torch intra-op threads in each actor process.", ge=1)

    def validate(self) -> None:
        check_choice("actor.noise_per", self.noise_per, NOISE_PER)


@dataclass
class LearnerSection:
    batch_size: int = field(256, "Transitions per update.", ge=1)
    actor_lr: float = field(1e-3, "Adam learning rate of the actor (policy) network.", gt=0)
    critic_lr: float = field(1e-3, "Adam learning rate of the critic(s).", gt=0)
    adam_eps: float = field(1e-8, "Adam epsilon.", gt=0)
    grad_clip: float = field(
        0.0, "Gradient-norm clipping threshold of each network (0 = no clipping).", ge=0
    )
    publish_interval: int = field(10, "Updates between parameter publications.", ge=1)
    prefetch_batches: int = field(2, "Batches sampled ahead by the background sampler.", ge=1)
    torch_threads: int = field(1, "torch intra-op threads in the learner process.", ge=1)
    max_updates: int = field(0, "Stop after this many updates (0 = no limit).", ge=0)


@dataclass
class DPGConfig:
    """Everything an Ape-X DPG run needs; written to the run folder as config.toml."""

    run: RunSection = field(None, "Run budget, seeds, checkpoints.")
    env: EnvSection = field(None, "Environment.")
    model: ModelSection = field(None, "Actor and critic networks.")
    algo: AlgoSection = field(None, "Targets: n-step, twin critics, smoothing, delays, tau.")
    actor: ActorSection = field(None, "Actors and their exploration noise.")
    replay: ReplaySection = field(None, "Prioritized replay.")
    learner: LearnerSection = field(None, "Learner.")
    eval: EvalSection = field(None, "Evaluator.")
    transport: TransportSection = field(None, "Data plane between the roles.")

    def __post_init__(self) -> None:
        fill_sections(self)

    def validate(self) -> None:
        self.replay.check_batch_size(self.learner.batch_size)
