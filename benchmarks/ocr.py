"""OCR inference: fp32 vs int8, one word per call vs all words of one image in one batch.

    rlfleet bench ocr [--run RUN ...] [--phi 0] [--words 16] [--seconds 4] [--threads 1]
                      [--int8 SETTING] [--compare SETTING ...] [--profile] [--json PATH]

For each recognizer (a trained run's latest checkpoint, or a fresh one at ``--phi``): the
held-out test images are read (1) one word per forward pass at its own width (batch 1) and
(2) ``--words`` words per pass, padded to the widest (the words of one image, batched). fp32 and
int8 (post-training quantization, :mod:`rlfleet.models.int8`) alternate in rounds, so load
changes hit both alike. Reported per setting: words/s, p50/p99 latency per call, and
``int8_speedup`` = int8 words/s / fp32 words/s. int8 is the named setting ``--int8`` (default:
:data:`rlfleet.agents.scst.ocr_int8.DEFAULT_INT8`, the recipe with the last layer fp32 too).
With a run, word accuracy and CER of fp32, of that int8 setting and of the recipe's rows
(per-tensor histogram and min/max, per-channel histogram) on the first ``--accuracy-images``
test images. ``--compare`` adds other int8 settings to the same alternating rounds (rows
``int8_<setting>``, with their own ``int8_speedup_<setting>``).
``--profile`` prints the top operators of one batched forward of each model.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch


def _percentiles(samples: list[float]) -> tuple[float, float]:
    a = np.asarray(samples) * 1000
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def _calls(images: np.ndarray, widths: np.ndarray, batch: int) -> list[torch.Tensor]:
    """Inputs of each forward pass: single words cropped to their width, or groups padded to
    the widest of the group (rounded up to the 4-pixel column stride)."""
    out = []
    for start in range(0, len(images) - batch + 1, batch):
        w = int(widths[start : start + batch].max())
        w = -(-w // 4) * 4
        out.append(
            torch.from_numpy(np.ascontiguousarray(images[start : start + batch, :, :w])).unsqueeze(
                1
            )
        )
    return out


def _time_rounds(models: dict, calls: list[torch.Tensor], seconds: float) -> dict:
    """Alternate the models call by call for about ``seconds`` each; latencies per call."""
    lat = {name: [] for name in models}
    words = {name: 0 for name in models}
    busy = {name: 0.0 for name in models}
    with torch.inference_mode():
        for m in models.values():  # warm-up
            m(calls[0])
        i = 0
        while min(busy.values()) < seconds:
            x = calls[i % len(calls)]
            i += 1
            for name, m in models.items():
                t = time.perf_counter()
                m(x)
                dt = time.perf_counter() - t
                lat[name].append(dt)
                busy[name] += dt
                words[name] += x.shape[0]
    out = {}
    for name in models:
        p50, p99 = _percentiles(lat[name])
        out[name] = {
            "words_per_s": words[name] / busy[name],
            "p50_ms": p50,
            "p99_ms": p99,
            "calls": len(lat[name]),
        }
    return out


def _profile(model: torch.nn.Module, x: torch.Tensor, top: int = 8) -> list[dict]:
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        for _ in range(2):
            model(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(5):
                model(x)
    rows = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:top]
    total = sum(e.self_cpu_time_total for e in prof.key_averages())
    return [
        {
            "op": e.key,
            "self_ms_per_call": e.self_cpu_time_total / 5000,
            "share": e.self_cpu_time_total / total,
        }
        for e in rows
    ]


def bench_model(name: str, net, task, args) -> dict:
    from rlfleet.agents.scst.ocr import recognize
    from rlfleet.agents.scst.ocr_int8 import INT8_SETTINGS, RECIPE_ROWS, quantize_setting
    from rlfleet.models.int8 import fused_fp32
    from rlfleet.models.params import param_count

    net.eval()
    fp32 = fused_fp32(net)  # BN folded into the convs: the fair fp32 baseline
    t = time.perf_counter()
    qnet = quantize_setting(net, task, args.int8)
    quantize_s = time.perf_counter() - t
    images, widths, rows = task.test_set
    result: dict = {
        "model": name,
        "phi": net.phi,
        "height": task.height,
        "params": param_count(net),
        "engine": torch.backends.quantized.engine,
        "int8_setting": args.int8,
        "int8_options": asdict(INT8_SETTINGS[args.int8]),
        "quantize_s": quantize_s,
        "settings": {},
    }
    models = {"fp32": fp32, "int8": qnet}
    models.update({f"int8_{c}": quantize_setting(net, task, c) for c in args.compare})
    for label, batch in (("batch1", 1), (f"batched{args.words}", args.words)):
        calls = _calls(images, widths, batch)
        timed = _time_rounds(models, calls, args.seconds)
        fp32_rate = timed["fp32"]["words_per_s"]
        timed["int8_speedup"] = timed["int8"]["words_per_s"] / fp32_rate
        for c in args.compare:
            timed[f"int8_speedup_{c}"] = timed[f"int8_{c}"]["words_per_s"] / fp32_rate
        result["settings"][label] = timed
    result["batched_gain_fp32"] = (
        result["settings"][f"batched{args.words}"]["fp32"]["words_per_s"]
        / result["settings"]["batch1"]["fp32"]["words_per_s"]
    )
    if args.accuracy_images:
        n = min(args.accuracy_images, len(rows))
        acc = {}
        variants = {
            "fp32": net,
            "int8": qnet,
            **{f"int8_{s}": quantize_setting(net, task, s) for s in RECIPE_ROWS if s != args.int8},
        }
        for label, m in variants.items():
            hyp, hyp_len = recognize(m, images[:n], widths[:n], task)
            dist, ref_len, exact = task.score_labels(hyp, hyp_len, rows[:n], test=True)
            acc[label] = {"word_acc": float(exact.mean()), "cer": float(dist.sum() / ref_len.sum())}
        result["accuracy"] = {"images": n, **acc}
    if args.profile:
        x = _calls(images, widths, args.words)[0]
        result["profile"] = {"fp32": _profile(fp32, x), "int8": _profile(qnet, x)}
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="rlfleet bench ocr", description=__doc__.splitlines()[0])
    p.add_argument("--run", action="append", default=[], help="a trained OCR run (repeatable)")
    p.add_argument("--phi", type=int, default=0, help="without --run: a fresh recognizer's phi")
    p.add_argument("--words", type=int, default=16, help="words of one image batched together")
    p.add_argument("--seconds", type=float, default=4.0, help="busy seconds per model and setting")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--int8", default=None, help="int8 setting (ocr_int8.INT8_SETTINGS)")
    p.add_argument("--compare", action="append", default=[], help="more int8 settings to time")
    p.add_argument("--accuracy-images", type=int, default=1000, help="with --run (0 = skip)")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    from rlfleet.agents.scst.ocr_int8 import DEFAULT_INT8, INT8_SETTINGS

    args.int8 = args.int8 or DEFAULT_INT8
    for name in (args.int8, *args.compare):
        if name not in INT8_SETTINGS:
            p.error(f"int8 setting {name!r} is unknown; valid: {', '.join(INT8_SETTINGS)}")
    import warnings

    # torch 2.13 flags its eager quantization API as deprecated; it is what this measures
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    torch.set_num_threads(args.threads)
    from rlfleet.agents.scst.ocr import task_of
    from rlfleet.agents.scst.ocr_eval import load_recognizer
    from rlfleet.models.ocr import CtcRecognizer
    from rlfleet.models.scaling import scaled_shape

    results = []
    if args.run:
        for run in args.run:
            net, _, task, folder = load_recognizer(run)
            results.append(bench_model(str(folder), net, task, args))
    else:
        from types import SimpleNamespace

        from rlfleet.agents.registry import config_from_dict

        h = scaled_shape(args.phi).height
        config = config_from_dict(
            {"run": {"algorithm": "scst"}, "env": {"id": "OCR/Words-v0", "envs_per_actor": 5,
             "kwargs": {"height": h, "test_images": 400}}, "recognizer": {"phi": args.phi}}
        )  # fmt: skip
        task = task_of(config)
        net = CtcRecognizer(task.num_classes, args.phi)
        args.accuracy_images = 0  # an untrained model: timing only
        results.append(
            bench_model(f"fresh phi={args.phi}", net, task, SimpleNamespace(**vars(args)))
        )
    load = os.getloadavg()
    for r in results:
        print(f"\n{r['model']}  phi={r['phi']} height={r['height']} params={r['params']} "
              f"engine={r['engine']} int8={r['int8_setting']} threads={args.threads}")  # fmt: skip
        print(f"{'setting':<12}{'model':<6}{'words/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
        for label, s in r["settings"].items():
            for m in [k for k, v in s.items() if isinstance(v, dict)]:
                print(
                    f"{label:<12}{m:<6}{s[m]['words_per_s']:>10.1f}{s[m]['p50_ms']:>9.2f}{s[m]['p99_ms']:>9.2f}"
                )
            for k in [k for k in s if k.startswith("int8_speedup")]:
                print(f"{label:<12}{k} {s[k]:.2f}x")
        print(f"batched / batch-1 words/s (fp32): {r['batched_gain_fp32']:.2f}x")
        if "accuracy" in r:
            a = r["accuracy"]
            for k, v in a.items():
                if k != "images":
                    print(
                        f"  {k:<15} word acc {100 * v['word_acc']:6.2f} %  CER {100 * v['cer']:6.2f} %  ({a['images']} images)"
                    )
        for name, ops in r.get("profile", {}).items():
            print(
                f"  profile {name}: "
                + ", ".join(f"{o['op']} {100 * o['share']:.0f}%" for o in ops[:6])
            )
    print(f"\nload average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"results": results, "threads": args.threads, "load": load}, indent=1)
        )
    return 0
