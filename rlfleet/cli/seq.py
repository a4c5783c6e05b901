"""``rlfleet eval-seq RUN``: PER / WER of a sequence run (greedy and beam, dev and test), a
table and example words; the result is written to ``RUN/eval_seq.json``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-seq", help="PER / WER of a sequence (scst) run, greedy and beam")
    p.add_argument("run", help="run folder")
    p.add_argument("--splits", default="dev,test", help="comma list of dev, test, train")
    p.add_argument("--beam", type=int, default=4, help="beam width (0 or 1: greedy only)")
    p.add_argument("--examples", type=int, default=8, help="example words shown per split")
    p.add_argument("--words", type=int, default=0, help="first N sources of each split (0 = all)")
    p.add_argument("--checkpoint", default="latest", help="latest, best, or a checkpoint folder")
    p.add_argument("--out", default=None, help="JSON path (default: RUN/eval_seq.json)")
    p.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: best on 2 shared cores)"
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from rlfleet import atomic

    torch.set_num_threads(max(1, args.threads))
    from rlfleet.agents.scst.evaluate import evaluate_run, format_result

    splits = tuple(s.strip() for s in args.splits.split(",") if s.strip())
    result = evaluate_run(args.run, splits, args.beam, args.examples, args.words, args.checkpoint)
    print(format_result(result))
    out = Path(args.out) if args.out else Path(args.run) / "eval_seq.json"
    atomic.write_text(out, json.dumps(result, indent=1))
    print(f"\nwritten: {out}")
    return 0
