"""Configuration of a PPO run (Schulman et al. 2017) with GAE (Schulman et al. 2016).

The run, env, eval and transport sections are shared by every agent
(:mod:`rlfleet.agents.common.sections`). PPO's own: the actor-critic network (``model``), the
objective and its schedule (``algo``), actors collecting fixed-length rollouts (``actor``) and
the learner's optimizer and batch (``learner``).

One learner update is one PPO iteration: ``learner.rollouts_per_update`` rollouts of
``algo.rollout_length`` steps of ``env.envs_per_actor`` environments, ``algo.epochs`` passes of
minibatches of ``algo.minibatch_size`` steps, then one new policy version is published.

Defaults follow the PPO paper's MuJoCo settings and the baselines / Stable-Baselines3
implementation details (Adam 3e-4, eps 1e-5, clip 0.2, GAE lambda 0.95, 10 epochs, minibatch 64,
gradient-norm clip 0.5, orthogonal initialisation, tanh MLPs of 64 units, separate policy and
value networks); presets override them per task.
"""

from __future__ import annotations

import math
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
from rlfleet.models.names import ACTIVATIONS, SQUASHES, TORSOS

ALGORITHM = "ppo"
#: ``algo.mode``: actors wait for each new policy (sync), or never wait and the ratio is taken
#: against the behaviour policy that acted (async, APPO).
MODES = ("sync", "async")
#: ``learner.lr_schedule``.
LR_SCHEDULES = ("constant", "linear")


@dataclass
class ActorCriticSection:
    torso: str = field("auto", "Network torso: auto, mlp, minatar or nature.")
    hidden: tuple[int, ...] = field((64, 64), "Hidden layer sizes of the MLP torsos.", ge=1)
    activation: str = field("tanh", "MLP activation: tanh (PPO paper, SB3) or relu.")
    shared: bool = field(
        False, "One torso for policy and value (else two, as in the PPO paper's MuJoCo setup)."
    )
    ortho_init: bool = field(
        True, "Orthogonal initialisation (sqrt(2) torsos, 0.01 policy output, 1 value output)."
    )
    squash: str = head_field("squash")
    log_std_init: float = head_field("log_std_init")
    state_dependent_std: bool = head_field("state_dependent_std")
    critic_inputs: int = head_field("critic_inputs")

    def validate(self) -> None:
        check_choice("model.torso", self.torso, TORSOS)
        check_choice("model.activation", self.activation, ACTIVATIONS)
        check_choice("model.squash", self.squash, SQUASHES)
        check_layers("model.hidden", self.hidden)


@dataclass
class PPOAlgoSection:
    mode: str = field(
        "sync",
        "sync: every rollout is acted by the policy being trained (actors wait for each new "
        "version; rollouts of older versions are discarded). async (APPO): actors never wait; "
        "the ratio is taken against the behaviour policy and values use V-trace targets.",
    )
    gamma: float = field(0.99, "Discount factor.", ge=0, le=1)
    gae_lambda: float = field(0.95, "GAE lambda (async: the V-trace lambda).", ge=0, le=1)
    rollout_length: int = field(128, "Steps per rollout (T) of each of the actor's envs.", ge=1)
    epochs: int = field(10, "Passes over each iteration's data (K).", ge=1)
    minibatch_size: int = field(64, "Steps per gradient step.", ge=1)
    clip_eps: float = field(0.2, "Clip range of the probability ratio (epsilon).", gt=0, lt=1)
    clip_anneal: bool = field(
        False, "Anneal clip_eps linearly to 0 with learner.lr_schedule's progress."
    )
    value_clip: float = field(
        0.0, "Clip the value update to +-this around the old value (0 = no clipping).", ge=0
    )
    value_cost: float = field(
        0.5, "Weight of the value loss mean((V - R)^2) (no 0.5 inside: SB3's vf_coef).", ge=0
    )
    entropy_cost: float = field(0.0, "Weight of the entropy bonus.", ge=0)
    normalize_advantages: bool = field(True, "Normalise advantages per minibatch.")
    target_kl: float = field(
        0.0,
        "Stop the iteration's epochs once a minibatch's approximate KL exceeds 1.5 x this "
        "(0 = never).",
        ge=0,
    )
    reward_scale: float = field(
        1.0, "Rewards are multiplied by this for learning (reported returns stay raw).", gt=0
    )
    max_lag: int = field(
        4,
        "async: rollouts more than this many versions older than the learner's are discarded.",
        ge=0,
    )

    def validate(self) -> None:
        check_choice("algo.mode", self.mode, MODES)


@dataclass
class PPOActorSection:
    num_actors: int = field(0, "Actor processes (0 = sized to the machine's cores).", ge=0)
    rollouts_per_version: int = field(
        0,
        "sync: rollouts each actor collects with one policy version before waiting for the next "
        "(0 = learner.rollouts_per_update split over the actors, rounded up).",
        ge=0,
    )
    torch_threads: int = field(1, "torch intra-op threads in each actor process.", ge=1)


@dataclass
class PPOLearnerSection:
    rollouts_per_update: int = field(
        1,
        "Rollouts per PPO iteration (B): one update sees B * rollout_length * envs_per_actor "
        "steps.",
        ge=1,
    )
    lr: float = field(3e-4, "Adam learning rate.", gt=0)
    lr_schedule: str = field(
        "constant", "constant, or linear: to 0 over learner.anneal_env_steps (SB3's lin_X)."
    )
    anneal_env_steps: int = field(
        0, "Env steps over which linear schedules reach 0 (0 = run.total_env_steps).", ge=0
    )
    adam_eps: float = field(1e-5, "Adam epsilon (baselines / SB3: 1e-5).", gt=0)
    grad_clip: float = field(0.5, "Global gradient-norm clip.", gt=0)
    torch_threads: int = field(1, "torch intra-op threads in the learner process.", ge=1)
    max_updates: int = field(0, "Stop after this many iterations (0 = no limit).", ge=0)

    def validate(self) -> None:
        check_choice("learner.lr_schedule", self.lr_schedule, LR_SCHEDULES)

    @property
    def publish_interval(self) -> int:
        """Every iteration publishes its policy (one version per iteration)."""
        return 1


@dataclass
class PPOConfig:
    """Everything a PPO run needs; written to the run folder as config.toml."""

    run: RunSection = field(None, "Run budget, seeds, checkpoints (run.algorithm = ppo).")
    env: EnvSection = field(None, "Environment.")
    model: ActorCriticSection = field(None, "Actor-critic network.")
    algo: PPOAlgoSection = field(None, "The clipped objective, GAE and the iteration.")
    actor: PPOActorSection = field(None, "Actors.")
    learner: PPOLearnerSection = field(None, "Learner.")
    eval: EvalSection = field(None, "Evaluator.")
    transport: TransportSection = field(None, "Data plane between the roles.")

    def __post_init__(self) -> None:
        fill_sections(self, run=run_section(ALGORITHM))

    def validate(self) -> None:
        check_algorithm(self, ALGORITHM, "a PPO config")
        lc = self.learner
        if lc.lr_schedule == "linear" or self.algo.clip_anneal:
            if not (lc.anneal_env_steps or self.run.total_env_steps):
                raise ConfigError(
                    "a linear schedule (learner.lr_schedule = 'linear' or algo.clip_anneal) "
                    "needs learner.anneal_env_steps or run.total_env_steps > 0 to anneal over"
                )

    @property
    def anneal_steps(self) -> int:
        """Env steps over which linear schedules reach 0."""
        return self.learner.anneal_env_steps or self.run.total_env_steps

    def quota(self, actors: int) -> int:
        """sync: rollouts an actor collects per policy version, with ``actors`` actors."""
        if self.actor.rollouts_per_version:
            return self.actor.rollouts_per_version
        return max(1, math.ceil(self.learner.rollouts_per_update / max(1, actors)))
