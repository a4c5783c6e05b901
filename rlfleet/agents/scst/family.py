"""The seam between the sequence agent (actors, learner, evaluator) and a kind of sequence model.

The SCST machinery -- lockstep groups of a greedy decode and k samples, the message, staleness
and truncated importance weights, the advantage and the loss -- does not depend on what the
model is. A *family* supplies the rest: the network, how an actor decodes one token (or one CTC
column) per environment step, what identifies a source in a message, the supervised loss (XE
for an encoder-decoder, CTC for a recognizer), the log-probabilities of given outputs under the
current parameters, and the dev error rates. The environment id picks the family
(:data:`FAMILIES`), so variants compose instead of being tested for in shared code.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol

import numpy as np

__all__ = ["FAMILIES", "Decoder", "SequenceFamily", "family_of"]

#: env.id -> the module whose ``make_family(config)`` builds that task's family.
FAMILIES: dict[str, str] = {
    "Seq/G2P-v0": "rlfleet.agents.scst.g2p",
    "OCR/Words-v0": "rlfleet.agents.scst.ocr",
}


class Decoder(Protocol):
    """An actor's (or the evaluator's) per-step decoding of lockstep observations."""

    def act(
        self, obs: np.ndarray, sample: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Tokens ``[K]`` (greedy where ``sample`` is False or None, sampled elsewhere) and
        their log-probabilities ``[K]``."""
        ...

    def reset(self) -> None: ...

    def t(self, obs: np.ndarray) -> np.ndarray: ...

    def ended(self, obs: np.ndarray) -> np.ndarray: ...

    def row(self, obs: np.ndarray) -> np.ndarray: ...

    def sources(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        """The message arrays that identify each row's source (see ``source_schema``)."""
        ...


class SequenceFamily(Protocol):
    """What the sequence agent asks of a kind of model (module docstring)."""

    task: Any
    max_output_len: int  # tokens (or CTC columns) per output, at most
    vocab_size: int  # valid tokens are 0..vocab_size-1
    num_train: int  # message rows index the train split: 0..num_train-1

    def build_network(self) -> Any: ...

    def source_schema(self) -> dict[str, tuple[str, tuple[int, ...]]]: ...

    def decoder(self, net: Any, seed: int, group: int = 1) -> Decoder: ...

    def supervised_batch(self, rng: np.random.Generator, size: int) -> dict[str, Any]: ...

    def supervised_loss(self, net: Any, batch: dict[str, Any]) -> tuple[Any, int, int]:
        """(loss, sources, decoder steps taught) of a supervised batch."""
        ...

    def sample_log_probs(
        self,
        net: Any,
        sources: dict[str, np.ndarray],
        group: int,
        tokens: np.ndarray,
        mask: np.ndarray,
    ) -> tuple[Any, Any]:
        """Log-probabilities ``[N, T]`` of ``tokens`` (``group - 1`` outputs per source, in
        order) under ``net``, and per-position logits ``[N, T, V]`` (for the entropy)."""
        ...

    def reference_loss(
        self, net: Any, sources: dict[str, np.ndarray], rows: np.ndarray, rng: np.random.Generator
    ) -> Any:
        """The supervised loss on the references of these sources (``scst.xe_mix``)."""
        ...

    def dev_rates(self, net: Any, count: int) -> dict[str, float]:
        """Error rates of greedy decodes of the first ``count`` dev sources (``seq/dev_*``)."""
        ...

    def progress(self, rates: dict[str, float]) -> dict[str, float]: ...

    def write_split(self, folder: Path) -> None: ...

    def check_init_from(self, config: Any, saved: dict[str, Any], folder: Path) -> None:
        """ConfigError unless a saved run's config ``saved`` has this run's data and model."""
        ...


def family_of(config: Any) -> SequenceFamily:
    """The family of ``config.env.id``; ConfigError naming the valid ids otherwise."""
    from rlfleet.errors import ConfigError

    name = FAMILIES.get(config.env.id)
    if name is None:
        raise ConfigError(
            f"run.algorithm scst trains sequence tasks; env.id {config.env.id!r} is not one "
            f"(valid: {', '.join(FAMILIES)})"
        )
    return importlib.import_module(name).make_family(config)


def build_network(config: Any, env: Any = None) -> Any:
    """The run's network, built by its family (``spec.make_network``)."""
    return family_of(config).build_network()
