"""Configuration of an Ape-X DQN run (and its DQfD variants): one dataclass per component, paper
defaults.

Defaults follow Horgan et al. (2018) for Atari where the paper gives one; presets (TOML files in
``rlfleet/cli/presets``) override them per task. The ``run``, ``env``, ``eval`` and ``transport``
sections are shared by every agent (:mod:`rlfleet.agents.common.sections`).
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
from rlfleet.errors import ConfigError


@dataclass
class ModelSection:
    torso: str = field("auto", "Network torso: auto, mlp, minatar or nature.")
    hidden: tuple[int, ...] = field((256, 256), "Hidden layer sizes of the MLP torso.", ge=1)
    dueling: bool = field(True, "Dueling head: Q = V + A - mean(A).")


@dataclass
class AlgoSection:
    n_step: int = field(3, "n of the n-step return.", ge=1)
    gamma: float = field(0.99, "Discount factor.", ge=0, le=1)
    double: bool = field(True, "Double Q-learning targets.")


@dataclass
class ActorSection:
    num_actors: int = field(0, "Actor processes (0 = sized to the machine's cores).", ge=0)
    epsilon: float = field(
        0.4, "Base epsilon of eps_i = epsilon ** (1 + epsilon_alpha * i / (N - 1)).", ge=0, le=1
    )
    epsilon_alpha: float = field(7.0, "Exponent spread of the per-explorer epsilons.", ge=0)
    epsilon_per: str = field(
        "actor", "One epsilon per 'actor' (paper) or per 'env' across the fleet."
    )
    push_size: int = field(
        64, "Transitions an actor buffers locally before computing priorities and pushing.", ge=1
    )
    param_fetch_interval: int = field(
        100, "Actor batch steps between checks for newer parameters (M).", ge=1
    )
    torch_threads: int = field(1, "torch intra-op threads in each actor process.", ge=1)
    int8: bool = field(
        False,
        "Select actions with an int8 copy of the Q-network (post-training quantization, "
        "re-calibrated on the actor's observations at each parameter load; priorities stay "
        "fp32). Feed-forward conv/linear ReLU networks only; see docs/ocr.md.",
    )

    def validate(self) -> None:
        check_choice("actor.epsilon_per", self.epsilon_per, ("actor", "env"))


@dataclass
class LearnerSection:
    batch_size: int = field(512, "Transitions per update.", ge=1)
    lr: float = field(6.25e-5, "Adam learning rate.", gt=0)
    adam_eps: float = field(1.5e-4, "Adam epsilon.", gt=0)
    grad_clip: float = field(40.0, "Gradient-norm clipping threshold.", gt=0)
    huber_delta: float = field(1.0, "Huber loss threshold.", gt=0)
    target_update_interval: int = field(2500, "Updates between target-network copies (T).", ge=1)
    publish_interval: int = field(10, "Updates between parameter publications (P).", ge=1)
    prefetch_batches: int = field(2, "Batches sampled ahead by the background sampler.", ge=1)
    torch_threads: int = field(1, "torch intra-op threads in the learner process.", ge=1)
    max_updates: int = field(0, "Stop after this many updates (0 = no limit).", ge=0)


DQFD_MODES = ("off", "dqfd", "apex-dqfd")
#: DQfD fields whose -1 means "the mode's published value".
DEFAULTED = (
    "pretrain_updates",
    "one_step_weight",
    "n_step_weight",
    "margin_weight",
    "margin",
    "l2_weight",
    "tc_weight",
    "imitate_top_fraction",
)


@dataclass
class DQfDSection:
    """Learning from demonstrations, composed on the Ape-X learner (extra losses + a
    demonstration source). Loss weights of -1 (and ``transformed = "auto"``) take the mode's
    published value: DQfD (Hester et al. 2018) or Ape-X DQfD (Pohlen et al. 2018)."""

    mode: str = field(
        "off",
        "off (plain Ape-X DQN); dqfd (demonstrations in the replay's reserved region, "
        "pre-training, 1-step + n-step + margin + L2 losses); apex-dqfd (a separate expert "
        "replay mixed at expert_fraction per batch, h/h^-1 targets, temporal consistency).",
    )
    demos: str = field("", "Demonstration file (.npz, written by `rlfleet record`).")
    pretrain_updates: int = field(
        -1,
        "Updates on demonstrations only before acting (-1 = 0 for apex-dqfd, 5000 for dqfd).",
        ge=-1,
    )
    expert_fraction: float = field(
        0.25, "apex-dqfd: expert share of every learner batch.", ge=0, le=1
    )
    demo_priority_eps: float = field(
        1.0,
        "dqfd: priority eps of demonstrations (the bonus; agent data uses replay.priority_eps).",
        gt=0,
    )
    one_step_weight: float = field(
        -1.0, "lambda0 on the 1-step TD loss (-1: 1 dqfd, 0 apex).", ge=-1
    )
    n_step_weight: float = field(-1.0, "lambda1 on the n-step TD loss (-1: 1).", ge=-1)
    margin_weight: float = field(-1.0, "lambda2 on the large-margin loss (-1: 1).", ge=-1)
    margin: float = field(-1.0, "Margin l(a_E, a) (-1: 0.8 dqfd, sqrt(0.999) apex-dqfd).", ge=-1)
    l2_weight: float = field(-1.0, "lambda3 on the L2 loss (-1: 1e-5 dqfd, 0 apex-dqfd).", ge=-1)
    tc_weight: float = field(
        -1.0, "Temporal-consistency loss weight (-1: 0 dqfd, 1 apex-dqfd).", ge=-1
    )
    transformed: str = field(
        "auto", "Transformed Bellman operator h/h^-1: auto (apex-dqfd only), on, off."
    )
    imitate_top_fraction: float = field(
        -1.0,
        "Share of the best demonstration episodes the margin loss uses (-1: 1 dqfd, 0.5 apex).",
        ge=-1,
        le=1,
    )

    def validate(self) -> None:
        check_choice("dqfd.mode", self.mode, DQFD_MODES)
        check_choice("dqfd.transformed", self.transformed, ("auto", "on", "off"))
        if self.mode != "off" and not self.demos:
            raise ConfigError(f"dqfd.mode = {self.mode!r} needs dqfd.demos = PATH (a .npz file)")
        for name in DEFAULTED:  # -1 takes the mode's published value; else >= 0
            value = getattr(self, name)
            if value != -1 and value < 0:
                raise ConfigError(f"dqfd.{name} must be >= 0 (or -1 for the default), got {value}")
        if self.imitate_top_fraction == 0:
            raise ConfigError("dqfd.imitate_top_fraction must be in (0, 1] (or -1), got 0")

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def resolved(self, name: str) -> float:
        """The value of a -1-defaulted field for this mode."""
        value = getattr(self, name)
        if value != -1:
            return value
        apex = self.mode == "apex-dqfd"
        defaults = {
            "pretrain_updates": 0 if apex else 5000,
            "one_step_weight": 0.0 if apex else 1.0,
            "n_step_weight": 1.0,
            "margin_weight": 1.0,
            "margin": 0.999**0.5 if apex else 0.8,
            "l2_weight": 0.0 if apex else 1e-5,
            "tc_weight": 1.0 if apex else 0.0,
            "imitate_top_fraction": 0.5 if apex else 1.0,
        }
        return defaults[name]

    @property
    def is_transformed(self) -> bool:
        if self.transformed == "auto":
            return self.mode == "apex-dqfd"
        return self.transformed == "on"


@dataclass
class ApexConfig:
    """Everything an Ape-X DQN run needs; written to the run folder as config.toml."""

    run: RunSection = field(None, "Run budget, seeds, checkpoints.")
    env: EnvSection = field(None, "Environment.")
    model: ModelSection = field(None, "Network.")
    algo: AlgoSection = field(None, "Return and target definition.")
    actor: ActorSection = field(None, "Actors.")
    replay: ReplaySection = field(None, "Replay.")
    learner: LearnerSection = field(None, "Learner.")
    eval: EvalSection = field(None, "Evaluator.")
    transport: TransportSection = field(None, "Data plane between the roles.")
    dqfd: DQfDSection = field(None, "Learning from demonstrations (DQfD / Ape-X DQfD).")

    def __post_init__(self) -> None:
        fill_sections(self)

    def validate(self) -> None:
        self.replay.check_batch_size(self.learner.batch_size)
