"""What SCST actors send: one lockstep batch of decoded outputs with their rewards.

A ``sequences`` message has N = G * (1 + k) rows, groups of one source: row 0 of a group is the
greedy decode, rows 1..k the samples. Arrays: the family's source arrays (``src`` [N, S] int32
source ids for G2P; ``image`` [N, H * W] uint8 and ``width`` [N] for OCR), ``row`` [N]
int64 (the source's row in the train split), ``tokens`` [N, T] int32 (EOS included, 0 after),
``length`` [N] int64, ``log_prob`` [N, T] float32 (the behaviour policy's log-probabilities of
the tokens), ``reward`` [N] float32. Metadata: ``actor``, ``policy_version``, ``env_steps``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rlfleet.envs.spec import EnvSpec
from rlfleet.transport.codec import Message, encode

SEQUENCES_KIND = "sequences"
#: The arrays every family's message has beside its source arrays.
OUTPUT_KEYS = ("row", "tokens", "length", "log_prob", "reward")


def message_schema(config: Any, env: EnvSpec) -> dict[str, tuple[str, tuple[int, ...]]]:
    from rlfleet.agents.scst.family import family_of

    family = family_of(config)
    t = family.max_output_len
    return {
        **family.source_schema(),
        "row": ("int64", ()),
        "tokens": ("int32", (t,)),
        "length": ("int64", ()),
        "log_prob": ("float32", (t,)),
        "reward": ("float32", ()),
    }


def encode_sequences(arrays: dict[str, np.ndarray], actor: Any, version: int) -> bytes:
    meta = {"actor": actor, "policy_version": version, "env_steps": int(arrays["length"].sum())}
    return encode(SEQUENCES_KIND, arrays, meta)


def message_check(config: Any, env: EnvSpec) -> Callable[[Message], str]:
    """Whole groups, tokens in the vocabulary, lengths within the cap, finite values, rows in
    the train split."""
    from rlfleet.agents.scst.family import family_of

    family = family_of(config)
    group, vocab, cap, n_train = (
        config.group_size,
        family.vocab_size,
        family.max_output_len,
        family.num_train,
    )

    def check(message: Message) -> str:
        a = message.arrays
        if len(a["row"]) % group:
            return f"{len(a['row'])} rows are not whole groups of {group}"
        if ((a["tokens"] < 0) | (a["tokens"] >= vocab)).any():
            return f"tokens outside 0..{vocab - 1}"
        if ((a["length"] < 1) | (a["length"] > cap)).any():
            return f"lengths outside 1..{cap}"
        if ((a["row"] < 0) | (a["row"] >= n_train)).any():
            return "source rows outside the train split"
        if not (np.isfinite(a["reward"]).all() and np.isfinite(a["log_prob"]).all()):
            return "non-finite reward or log_prob"
        return ""

    return check
