"""Configuration of a sequence-level RL run: supervised pre-training (``scst.phase = "xe"``)
or self-critical sequence training (``"scst"``, Rennie et al. 2017) of a sequence model: an
attentional encoder-decoder on ``env.id = "Seq/G2P-v0"`` (section ``model``) or a CTC text
recognizer on ``"OCR/Words-v0"`` (section ``recognizer``); task options in ``env.kwargs``.

In the SCST phase each actor decodes groups of ``1 + scst.samples`` episodes per source (the
greedy decode and k samples, ``env.kwargs.group_size``, filled in here) with a recent parameter
version and sends the outputs with their rewards; the learner updates on them.
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
    fill_sections,
    run_section,
)
from rlfleet.config import field
from rlfleet.errors import ConfigError

ALGORITHM = "scst"
PHASES = ("xe", "scst")
BASELINES = ("greedy", "mean_others")  # rlfleet.math.scst.BASELINES, without importing torch
SEQ_ENV = "Seq/G2P-v0"


@dataclass
class Seq2SeqSection:
    embed: int = field(64, "Token embedding size (source and target).", ge=1)
    hidden: int = field(128, "Encoder LSTM size per direction (the decoder has twice this).", ge=1)
    layers: int = field(1, "Encoder LSTM layers.", ge=1)
    dropout: float = field(
        0.0, "Dropout on embeddings and the decoder output (training only).", ge=0, lt=1
    )


@dataclass
class RecognizerSection:
    phi: int = field(
        0,
        "Compound-scaling coefficient of the CTC recognizer (OCR/Words-v0): depth x1.2**phi, "
        "width x1.1**phi, input height x1.15**phi; env.kwargs.height must equal the scaled height "
        "(32, 36, 44 for phi 0, 1, 2).",
        ge=0,
        le=4,
    )


@dataclass
class ScstSection:
    phase: str = field(
        "scst", "xe: teacher-forced cross-entropy on the references; scst: self-critical RL."
    )
    samples: int = field(4, "k: sampled outputs per source (beside its greedy decode).", ge=1)
    baseline: str = field(
        "greedy",
        "greedy: r(greedy decode), as in the paper; mean_others: mean reward of the other k - 1 samples.",
    )
    entropy_cost: float = field(
        0.0, "Weight of the (subtracted) mean token entropy of the samples.", ge=0
    )
    xe_mix: float = field(
        0.0,
        "Weight of the cross-entropy loss on the sources' references added to the SCST loss.",
        ge=0,
    )
    rho_bar: float = field(
        1.0,
        "Truncation of the per-token importance weights pi/mu of samples from older versions.",
        gt=0,
    )
    max_lag: int = field(
        2,
        "Samples decoded more than this many versions ago are discarded (0: the current version only).",
        ge=0,
    )
    init_from: str = field(
        "", "A run or checkpoint folder (an XE run) whose weights start training; empty: random."
    )
    dev_words: int = field(
        1000,
        "Dev-set sources greedily decoded for the seq/dev_per and seq/dev_wer curves (0 = none).",
        ge=0,
    )
    dev_interval_s: float = field(60.0, "Seconds between those dev measurements.", gt=0)

    def validate(self) -> None:
        check_choice("scst.phase", self.phase, PHASES)
        check_choice("scst.baseline", self.baseline, BASELINES)
        if self.baseline == "mean_others" and self.samples < 2:
            raise ConfigError("scst.baseline 'mean_others' needs scst.samples >= 2")


@dataclass
class ScstActorSection:
    num_actors: int = field(0, "Actor processes (0 = sized to the machine's cores).", ge=0)
    torch_threads: int = field(1, "torch intra-op threads in each actor process.", ge=1)


@dataclass
class ScstLearnerSection:
    batch_size: int = field(
        128, "XE: sources per update. SCST: sources (groups of 1 + k outputs) per update.", ge=1
    )
    lr: float = field(1e-3, "Adam learning rate.", gt=0)
    adam_eps: float = field(1e-8, "Adam epsilon.", gt=0)
    grad_clip: float = field(5.0, "Global gradient-norm clip (0 = none).", ge=0)
    publish_interval: int = field(1, "Updates between parameter publications.", ge=1)
    prefetch_batches: int = field(2, "XE batches prepared ahead.", ge=1)
    torch_threads: int = field(1, "torch intra-op threads in the learner process.", ge=1)
    max_updates: int = field(0, "Stop after this many updates (0 = no limit).", ge=0)


def _seq_env() -> EnvSection:
    return EnvSection(id=SEQ_ENV, envs_per_actor=160)


@dataclass
class ScstConfig:
    """Everything a sequence-level run needs; written to the run folder."""

    run: RunSection = field(None, "Run budget, seeds, checkpoints (run.algorithm = scst).")
    env: EnvSection = field(
        None, "The sequence task (env.kwargs: corpus, split, reward; docs/sequences.md)."
    )
    model: Seq2SeqSection = field(None, "The encoder-decoder (Seq/G2P-v0).")
    recognizer: RecognizerSection = field(None, "The CTC text recognizer (OCR/Words-v0).")
    scst: ScstSection = field(None, "Phase, samples, baseline and loss terms.")
    actor: ScstActorSection = field(None, "Actors (idle in the XE phase).")
    learner: ScstLearnerSection = field(None, "Learner.")
    eval: EvalSection = field(
        None,
        "Evaluator: greedy decodes of the first eval.episodes dev sources; return = -normalised edit distance.",
    )
    transport: TransportSection = field(None, "Data plane between the roles.")

    def __post_init__(self) -> None:
        fill_sections(self, run=run_section(ALGORITHM, total_env_steps=0), env=_seq_env)

    @property
    def group_size(self) -> int:
        """Episodes per source in an actor's batch: the greedy decode and k samples."""
        return 1 + self.scst.samples

    def validate(self) -> None:
        check_algorithm(self, ALGORITHM, "an SCST config")
        from rlfleet.agents.scst.family import FAMILIES

        if self.env.id not in FAMILIES:
            raise ConfigError(
                f"run.algorithm scst trains sequence tasks; env.id {self.env.id!r} is not one (valid: {', '.join(FAMILIES)})"
            )
        kwargs = self.env.kwargs
        given = kwargs.get("group_size")
        if given is None:
            kwargs["group_size"] = self.group_size
        elif given != self.group_size:
            raise ConfigError(
                f"env.kwargs.group_size {given!r} must be 1 + scst.samples = {self.group_size} "
                "(the greedy decode and the samples of one source); leave it out to have it set"
            )
        if self.env.envs_per_actor % self.group_size:
            raise ConfigError(
                f"env.envs_per_actor {self.env.envs_per_actor} must be a multiple of 1 + scst.samples "
                f"= {self.group_size} (whole groups of one source)"
            )
