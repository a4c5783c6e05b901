"""Evaluation of a sequence run's checkpoint: PER and WER of greedy and beam decoding on the
dev and test splits, with example outputs (``rlfleet eval-seq RUN``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlfleet.agents.common.checkpoint import latest_checkpoint, load_weights, resolve_checkpoint
from rlfleet.agents.scst.network import build_network, source_lengths, task_of
from rlfleet.envs.sequences import error_rates
from rlfleet.envs.sequences.corpus import EOS, Corpus
from rlfleet.errors import CheckpointError, ConfigError
from rlfleet.models.decoding import beam_search, decode
from rlfleet.models.seq2seq import Seq2Seq

__all__ = ["decode_corpus", "evaluate_run"]


def decode_corpus(
    net: Seq2Seq, corpus: Corpus, rows: np.ndarray, max_len: int, beam: int = 0, batch: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Outputs (target ids, EOS removed) ``[B, max_len]`` and lengths of greedy (``beam`` 0)
    or beam decoding of ``corpus`` sources ``rows``, in batches."""
    tokens = np.zeros((rows.size, max_len), np.int32)
    lengths = np.zeros(rows.size, np.int64)
    net.eval()
    with torch.inference_mode():
        for start in range(0, rows.size, batch):
            part = rows[start : start + batch]
            src = corpus.src[part]
            args = (
                net,
                torch.from_numpy(src.astype(np.int64)),
                torch.from_numpy(source_lengths(src)),
                max_len,
            )
            out = beam_search(*args, width=beam) if beam else decode(*args)
            got = out.tokens.numpy()
            n = out.lengths.numpy()
            ends = got[np.arange(len(n)), n - 1] == EOS
            tokens[start : start + part.size, : got.shape[1]] = np.where(got == EOS, 0, got)
            lengths[start : start + part.size] = n - ends
    return tokens, lengths


def _checkpoint(run: Path, which: str) -> Path:
    if which == "latest":
        found = latest_checkpoint(run)
        if found is None:
            raise CheckpointError(f"{run} has no checkpoints")
        return found
    if which == "best":
        return resolve_checkpoint(run)
    return resolve_checkpoint(Path(which))


def evaluate_run(
    run: str | Path,
    splits: tuple[str, ...] = ("dev", "test"),
    beam: int = 4,
    examples: int = 8,
    words: int = 0,
    checkpoint: str = "latest",
) -> dict[str, Any]:
    """PER / WER per split and decoding (``greedy``, ``beam{W}``), decode speed, and examples.
    ``words`` limits each split to its first N sources (0 = all)."""
    from rlfleet.agents import registry

    folder = _checkpoint(Path(run), checkpoint)
    tensors, state = load_weights(folder)
    if "config" not in state:
        raise CheckpointError(f"{folder}: state.json has no config")
    config = registry.config_from_dict(state["config"])
    if config.run.algorithm != "scst" or config.env.id != "Seq/G2P-v0":
        raise ConfigError(
            f"{folder} is a {config.run.algorithm!r} run on {config.env.id!r}; eval-seq reads "
            "scst runs on Seq/G2P-v0 (OCR runs: rlfleet eval-ocr)"
        )
    task = task_of(config)
    net = build_network(config)
    net.load_state_dict(
        {k[len("online.") :]: v for k, v in tensors.items() if k.startswith("online.")}
    )
    task.write_split(Path(run) / "split")
    result: dict[str, Any] = {
        "checkpoint": str(folder),
        "updates": state.get("counters", {}).get("updates"),
        "splits": {},
    }
    decodings = [("greedy", 0)] + ([(f"beam{beam}", beam)] if beam > 1 else [])
    for name in splits:
        corpus = task.part(name)
        rows = np.arange(min(words, len(corpus)) if words else len(corpus))
        out: dict[str, Any] = {"words": int(rows.size)}
        shown: dict[str, list[str]] = {}
        for label, width in decodings:
            start = time.perf_counter()
            tokens, lengths = decode_corpus(net, corpus, rows, task.max_output_len, width)
            seconds = time.perf_counter() - start
            rates = error_rates(corpus, rows, tokens, lengths)
            out[label] = {
                **rates,
                "seconds": seconds,
                "words_per_s": rows.size / max(seconds, 1e-9),
            }
            vocab = corpus.tgt_vocab
            shown[label] = [
                " ".join(vocab.decode(tokens[i], int(lengths[i])))
                for i in range(min(examples, rows.size))
            ]
        out["examples"] = [
            {
                "source": corpus.keys[i],
                "references": [" ".join(r) for r in corpus.refs_of(i)],
                **{label: shown[label][i] for label, _ in decodings},
            }
            for i in range(min(examples, rows.size))
        ]
        result["splits"][name] = out
    return result


def format_result(result: dict[str, Any]) -> str:
    """The table and the examples as text."""
    lines = [f"checkpoint {result['checkpoint']} (updates {result['updates']})", ""]
    lines.append(
        f"{'split':6} {'decoding':9} {'words':>6} {'PER %':>7} {'WER %':>7} {'words/s':>8}"
    )
    for name, out in result["splits"].items():
        for label, value in out.items():
            if isinstance(value, dict):
                lines.append(
                    f"{name:6} {label:9} {out['words']:>6} {100 * value['per']:>7.2f} "
                    f"{100 * value['wer']:>7.2f} {value['words_per_s']:>8.0f}"
                )
    for name, out in result["splits"].items():
        lines += ["", f"examples ({name}):"]
        for ex in out["examples"]:
            outs = "  ".join(
                f"{k}: {v}" for k, v in ex.items() if k not in ("source", "references")
            )
            lines.append(f"  {ex['source']:<16} ref: {' | '.join(ex['references'])}   {outs}")
    return "\n".join(lines)
