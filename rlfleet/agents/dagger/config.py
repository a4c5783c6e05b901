"""Configuration of a DAgger run (Ross, Gordon and Bagnell, 2011), and of behaviour cloning as its
special case (``dagger.beta_decay = 1``: every iteration acts with the expert).

Iteration i acts with ``pi_i = beta_i * expert + (1 - beta_i) * learner_i``, ``beta_i =
beta_decay ** (i - 1)`` (so ``beta_1 = 1``), collects ``labels_per_iteration`` states labelled by
the expert, adds them to the aggregate dataset D, and trains the learner's classifier on all of D
for ``updates_per_iteration`` updates; the new classifier is published as ``learner_{i+1}``.
``max_labels`` is the expert-label budget: once D holds that many labels, collection stops and
the learner keeps training on D.
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
    run_section,
)
from rlfleet.config import field
from rlfleet.errors import ConfigError
from rlfleet.models.names import TORSOS

ALGORITHM = "dagger"


@dataclass
class ClassifierSection:
    torso: str = field("auto", "Network torso: auto, mlp, minatar or nature.")
    hidden: tuple[int, ...] = field((64, 64), "Hidden layer sizes of the MLP torso.", ge=1)

    def validate(self) -> None:
        check_choice("model.torso", self.torso, TORSOS)
        check_layers("model.hidden", self.hidden)


@dataclass
class DaggerSection:
    expert: str = field(
        "",
        "The expert that labels every visited state: MODULE:FUNCTION of a scripted policy "
        "(e.g. rlfleet.envs.demonstrators:cartpole_balance), or a run / checkpoint folder whose "
        "greedy policy labels.",
    )
    beta_decay: float = field(
        0.5,
        "p of beta_i = p ** (i - 1): the expert's share of the acting mixture in iteration i "
        "(beta_1 = 1). 0: the learner alone from iteration 2 on; 1: behaviour cloning.",
        ge=0,
        le=1,
    )
    labels_per_iteration: int = field(
        500, "Expert labels collected with pi_i (by its own actors) before training pi_{i+1}.", ge=1
    )
    max_labels: int = field(
        5000, "Expert-label budget: collection stops once D holds this many (0 = no limit).", ge=0
    )
    capacity: int = field(
        0, "States D keeps (FIFO beyond it; 0 = max_labels, or 1,000,000 without a budget).", ge=0
    )

    def validate(self) -> None:
        if not self.expert:
            raise ConfigError(
                "dagger.expert is required: MODULE:FUNCTION of a scripted policy (e.g. "
                '"rlfleet.envs.demonstrators:cartpole_balance") or a run / checkpoint folder'
            )

    def beta(self, iteration: int) -> float:
        """beta_i of iteration ``iteration`` (1-based)."""
        return 1.0 if iteration <= 1 else self.beta_decay ** (iteration - 1)

    @property
    def store_capacity(self) -> int:
        return self.capacity or self.max_labels or 1_000_000


@dataclass
class DaggerActorSection:
    num_actors: int = field(0, "Actor processes (0 = sized to the machine's cores).", ge=0)
    push_size: int = field(64, "Labelled states an actor buffers before sending them.", ge=1)
    param_fetch_interval: int = field(
        1, "Batch steps between checks for a newer policy (a new policy is a new iteration).", ge=1
    )
    torch_threads: int = field(1, "torch intra-op threads in each actor process.", ge=1)


@dataclass
class DaggerLearnerSection:
    batch_size: int = field(64, "Labelled states per update (sampled uniformly from D).", ge=1)
    lr: float = field(1e-3, "Adam learning rate.", gt=0)
    updates_per_iteration: int = field(
        200,
        "Updates on D after each iteration's labels; then the learner publishes pi_{i+1}.",
        ge=1,
    )
    prefetch_batches: int = field(2, "Batches sampled ahead.", ge=1)
    torch_threads: int = field(1, "torch intra-op threads in the learner process.", ge=1)
    max_updates: int = field(0, "Stop after this many updates (0 = no limit).", ge=0)

    @property
    def publish_interval(self) -> int:
        """The shared learner loop publishes after every iteration's updates."""
        return self.updates_per_iteration


@dataclass
class DaggerConfig:
    """Everything a DAgger (or behaviour-cloning) run needs; written to the run folder."""

    run: RunSection = field(None, "Run budget, seeds, checkpoints (run.algorithm = dagger).")
    env: EnvSection = field(None, "Environment.")
    model: ClassifierSection = field(None, "The learner's classifier (observation -> action).")
    dagger: DaggerSection = field(None, "Expert, mixture schedule and label budget.")
    actor: DaggerActorSection = field(None, "Actors.")
    learner: DaggerLearnerSection = field(None, "Learner.")
    eval: EvalSection = field(None, "Evaluator.")
    transport: TransportSection = field(None, "Data plane between the roles.")

    def __post_init__(self) -> None:
        fill_sections(self, run=run_section(ALGORITHM))

    def validate(self) -> None:
        check_algorithm(self, ALGORITHM, "a DAgger config")
        d, lc = self.dagger, self.learner
        smallest = min(d.labels_per_iteration, d.max_labels or d.labels_per_iteration)
        if lc.batch_size > smallest:
            raise ConfigError(
                f"learner.batch_size {lc.batch_size} exceeds the first iteration's labels "
                f"({smallest}: dagger.labels_per_iteration / dagger.max_labels): no batch to draw"
            )
        if d.capacity and d.max_labels and d.capacity < d.max_labels:
            raise ConfigError(
                f"dagger.capacity {d.capacity} is below dagger.max_labels {d.max_labels}: the "
                "aggregate dataset would forget labels it paid for (0 = max_labels)"
            )
