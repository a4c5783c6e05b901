"""``rlfleet eval-ocr RUN``: CER and word accuracy of an OCR run on the held-out test set
(greedy and beam; fp32, the default int8 setting and the recipe's int8 rows), a table, and a PNG grid of examples;
written to ``RUN/eval_ocr.json`` and ``RUN/eval_ocr.png``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-ocr", help="CER / word accuracy of an OCR (scst) run, fp32 and int8")
    p.add_argument("run", help="run folder")
    p.add_argument("--checkpoint", default="latest", help="latest, best, or a checkpoint folder")
    p.add_argument("--images", type=int, default=0, help="first N test images (0 = all)")
    p.add_argument("--beam", type=int, default=4, help="prefix-beam width (0 or 1: greedy only)")
    p.add_argument("--no-int8", action="store_true", help="skip the int8 evaluations")
    p.add_argument(
        "--int8-setting",
        default=None,
        help="the int8 row's setting (default: ocr_int8.DEFAULT_INT8)",
    )
    p.add_argument("--examples", type=int, default=24, help="images in the PNG grid")
    p.add_argument("--out", default=None, help="JSON path (default: RUN/eval_ocr.json)")
    p.add_argument("--png", default=None, help="PNG path (default: RUN/eval_ocr.png)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")


def format_result(result: dict) -> str:
    lines = [f"{'decoding':<24}{'CER %':>8}{'word acc %':>12}{'seconds':>9}"]
    for name, r in result.items():
        if isinstance(r, dict) and "cer" in r:
            lines.append(
                f"{name:<24}{100 * r['cer']:>8.2f}{100 * r['word_acc']:>12.2f}{r['seconds']:>9.2f}"
            )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import torch

    from rlfleet import atomic

    torch.set_num_threads(max(1, args.threads))
    from rlfleet.agents.scst.ocr_eval import evaluate_ocr, example_grid, load_recognizer
    from rlfleet.agents.scst.ocr_int8 import DEFAULT_INT8, INT8_SETTINGS
    from rlfleet.errors import ConfigError

    setting = args.int8_setting or DEFAULT_INT8
    if setting not in INT8_SETTINGS:  # before loading anything
        raise ConfigError(f"int8 setting {setting!r} is unknown; valid: {', '.join(INT8_SETTINGS)}")
    net, _, task, folder = load_recognizer(args.run, args.checkpoint)
    result = {"checkpoint": str(folder)}
    result.update(evaluate_ocr(net, task, args.images, args.beam, not args.no_int8, setting))
    print(f"{folder}: {result['images']} held-out test images (held-out words and fonts)")
    print(format_result(result))
    png = example_grid(net, task, args.png or Path(args.run) / "eval_ocr.png", args.examples)
    out = Path(args.out) if args.out else Path(args.run) / "eval_ocr.json"
    atomic.write_text(out, json.dumps(result, indent=1))
    print(f"\nwritten: {out}, {png}")
    return 0
