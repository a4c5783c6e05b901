"""`rlfleet bench export`: a run's acting network in torch vs onnxruntime, at the actors' batch
sizes.

The run (``--run``; default: a freshly initialised network of ``--preset``, which costs the same
to run as a trained one) is exported with ``rlfleet export`` (checked against its policy on real
observations), then each runtime acts on batches of real observations of the run's environment,
one thread each:

* **torch, policy**: the run's greedy policy as actors and the evaluator call it
  (``Policy.act``: numpy in, ``torch.no_grad`` forward, argmax, numpy out);
* **torch, module**: the exported module's forward alone under ``torch.inference_mode``;
* **onnxruntime**: ``InferenceSession.run`` of the ONNX file (CPU provider, 1 intra-op thread).

Median and quartiles of ``--repeats`` timed calls per batch size, after ``--warmup`` calls.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.machine import machine_info


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="rlfleet bench export", description=__doc__.split("\n")[0])
    p.add_argument("--run", default=None, help="run or checkpoint folder (default: --preset)")
    p.add_argument("--preset", default="cartpole", help="network of this preset (cartpole)")
    p.add_argument("--batches", default="1,64", help="batch sizes (1,64)")
    p.add_argument("--repeats", type=int, default=2000, help="timed calls per batch size (2000)")
    p.add_argument("--warmup", type=int, default=200, help="untimed calls first (200)")
    p.add_argument("--json", default=None, metavar="PATH")
    return p.parse_args(argv)


def _fresh_run(preset: str, folder: Path) -> Path:
    """A run folder holding one checkpoint of an initialised network of ``preset``."""
    import torch

    from rlfleet.agents import registry
    from rlfleet.agents.common.checkpoint import save_checkpoint
    from rlfleet.cli.presets import build_config
    from rlfleet.config import to_dict
    from rlfleet.envs.spec import probe_env

    config = build_config(preset, [])
    env = probe_env(config.env.id, config.env.kwargs)
    torch.manual_seed(0)
    net = registry.spec_of(config).make_network(config, env)
    state = {
        "counters": {"updates": 0, "env_steps": 0, "elapsed_s": 0.0},
        "config": to_dict(config),
    }
    tensors = {f"online.{k}": v for k, v in net.state_dict().items()}
    save_checkpoint(folder, 0, tensors, {}, state)
    return folder


def _timed(fn: Any, repeats: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e6)
    q1, med, q3 = statistics.quantiles(times, n=4)
    return {"median_us": med, "q1_us": q1, "q3_us": q3}


def measure(run: str, batches: list[int], repeats: int, warmup: int, tmp: Path) -> dict[str, Any]:
    import onnxruntime as ort
    import torch

    from rlfleet.api.export import acting_module, export_policy, sample_observations
    from rlfleet.api.policy import load_policy

    torch.set_num_threads(1)
    report = export_policy(run, "onnx", tmp / "policy.onnx", check_observations=1000)
    policy = load_policy(run)
    module = acting_module(policy)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(report.path, options, providers=["CPUExecutionProvider"])
    obs_all = sample_observations(policy, max(batches) * 4, seed=1)
    rows = []
    for batch in batches:
        obs = obs_all[:batch].copy()
        tensor = torch.from_numpy(obs)

        def torch_module(tensor: Any = tensor) -> Any:
            with torch.inference_mode():
                return module(tensor)

        row = {
            "batch": batch,
            "torch_policy": _timed(lambda obs=obs: policy.act(obs), repeats, warmup),
            "torch_module": _timed(torch_module, repeats, warmup),
            "onnxruntime": _timed(lambda obs=obs: session.run(None, {"obs": obs}), repeats, warmup),
        }
        rows.append(row)
    return {"export": vars(report), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    info = machine_info(("torch", "onnxruntime", "onnx"))
    batches = [int(b) for b in args.batches.split(",")]
    with tempfile.TemporaryDirectory(prefix="rlfleet-bench-export-") as tmp:
        run = args.run or str(_fresh_run(args.preset, Path(tmp) / "run"))
        result = measure(run, batches, args.repeats, args.warmup, Path(tmp))
    print(
        f"{run if args.run else args.preset}: {result['export']['actions_equal']:,} of "
        f"{result['export']['observations']:,} exported actions equal the run's policy"
    )
    print(
        f"{'batch':>5} {'torch policy':>20} {'torch module':>20} {'onnxruntime':>20}   (us/call, median [q1-q3])"
    )
    for row in result["rows"]:
        cells = [
            f"{row[k]['median_us']:8.1f} [{row[k]['q1_us']:.0f}-{row[k]['q3_us']:.0f}]"
            for k in ("torch_policy", "torch_module", "onnxruntime")
        ]
        print(f"{row['batch']:>5} " + " ".join(f"{c:>20}" for c in cells))
    info["load_avg_end"] = os.getloadavg()
    if args.json:
        payload = {"machine": info, "run": args.run, "preset": args.preset, **result}
        Path(args.json).write_text(json.dumps(payload, indent=1))
        print(f"wrote {args.json}")
    return 0
