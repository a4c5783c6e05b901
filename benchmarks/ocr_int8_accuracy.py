"""OCR int8 accuracy drop, post-training remedies compared on trained runs, with standard errors.

    rlfleet bench ocr-int8-accuracy --run RUN [--run RUN ...] [--images 8000]
                                    [--offset 0] [--settings a,b,...] [--json PATH]

Each run's recognizer is evaluated (greedy CTC) in fp32 and in int8 under each setting on the
first ``--images`` held-out test images: the task's own test set made larger (the same
construction, so its first 1,000 images are ``eval-ocr``'s; held-out words in held-out fonts,
never rendered in training; ``--offset K`` takes images K..K+N-1 instead, a fresh sample to
confirm a setting chosen on the first ones: the held-out words repeat past their count, in new
renderings). The drop of a setting is the paired difference fp32 - int8 of
word accuracy on the same images; its standard error is std(d) / sqrt(n) over images, and the
mean over runs uses the per-image mean of d over runs (the runs share the images); each setting
is also compared with the first one, paired per image (the difference of the two drops and its
standard error). Settings
are the named int8 recipes of :data:`rlfleet.agents.scst.ocr_int8.INT8_SETTINGS`.
No timing here (``bench ocr`` times).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import numpy as np
import torch


def _paired(d: np.ndarray) -> tuple[float, float]:
    """Mean and standard error (points) of per-image differences ``d``."""
    return 100 * float(d.mean()), 100 * float(d.std(ddof=1) / np.sqrt(d.size))


def _score(model: torch.nn.Module, task, offset: int) -> tuple[np.ndarray, float]:  # noqa: ANN001
    """Per-image exact-word indicator and the CER of greedy decodes of ``task``'s test set
    from image ``offset`` on."""
    from rlfleet.agents.scst.ocr import recognize

    images, widths, rows = (a[offset:] for a in task.test_set)
    hyp, n = recognize(model, images, widths, task)
    dist, ref_len, exact = task.score_labels(hyp, n, rows, test=True)
    return exact.astype(np.float64), float(dist.sum() / ref_len.sum())


def main(argv: list[str] | None = None) -> int:
    from rlfleet.agents.scst.ocr_int8 import INT8_SETTINGS

    p = argparse.ArgumentParser(
        prog="rlfleet bench ocr-int8-accuracy", description=__doc__.splitlines()[0]
    )
    p.add_argument("--run", action="append", required=True, help="a trained OCR run (repeatable)")
    p.add_argument("--images", type=int, default=8000, help="held-out test images per run")
    p.add_argument("--offset", type=int, default=0, help="first test image index")
    p.add_argument("--settings", default=",".join(INT8_SETTINGS), help="comma-separated")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    settings = [s for s in args.settings.split(",") if s]
    bad = [s for s in settings if s not in INT8_SETTINGS]
    if bad:
        p.error(f"unknown settings {bad}; valid: {', '.join(INT8_SETTINGS)}")
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    torch.set_num_threads(args.threads)
    from rlfleet.agents.scst.ocr_eval import load_recognizer
    from rlfleet.agents.scst.ocr_int8 import quantize_setting
    from rlfleet.envs.ocr.task import OcrTask

    start = time.time()
    runs, diffs = [], {s: [] for s in settings}
    for run in args.run:
        net, _, task, folder = load_recognizer(run)
        big = OcrTask(dataclasses.replace(task.options, test_images=args.offset + args.images))

        fp32, fp32_cer = _score(net, big, args.offset)
        entry = {"run": str(folder), "fp32": {"word_acc": 100 * fp32.mean(), "cer": 100 * fp32_cer}}
        line = [f"{folder}: fp32 {100 * fp32.mean():.2f}"]
        for s in settings:
            t = time.perf_counter()
            qnet = quantize_setting(net, task, s)
            quantize_s = time.perf_counter() - t
            q, q_cer = _score(qnet, big, args.offset)
            d = fp32 - q
            diffs[s].append(d)
            drop, se = _paired(d)
            entry[s] = {"word_acc": 100 * q.mean(), "cer": 100 * q_cer, "drop": drop,
                        "drop_se": se, "quantize_s": quantize_s}  # fmt: skip
            line.append(f"{s} {-drop:+.2f}+-{se:.2f}")
        runs.append(entry)
        print("  ".join(line), flush=True)
    mean = {}
    base = np.mean(diffs[settings[0]], axis=0)
    for s in settings:
        per_image = np.mean(diffs[s], axis=0)
        drop, se = _paired(per_image)
        vs, vs_se = _paired(per_image - base)
        mean[s] = {"drop": drop, "drop_se": se, "vs_first": vs, "vs_first_se": vs_se}
    print(f"\nmean word-accuracy points lost over {len(runs)} runs x {args.images} images "
          f"from image {args.offset} (+- standard error of the paired difference; last "
          f"columns: minus the drop of {settings[0]}, paired):")  # fmt: skip
    for s in settings:
        m = mean[s]
        print(f"  {s:<28} {m['drop']:6.2f} +- {m['drop_se']:.2f}   "
              f"{m['vs_first']:+6.2f} +- {m['vs_first_se']:.2f}")  # fmt: skip
    load = os.getloadavg()
    print(f"wall-clock {time.time() - start:.0f} s, load average {load[0]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"images": args.images, "offset": args.offset, "runs": runs, "mean": mean,
                       "seconds": time.time() - start, "load": load}, f, indent=1)  # fmt: skip
    return 0
