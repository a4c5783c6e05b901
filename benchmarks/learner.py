"""`rlfleet bench learner`: what one learner update costs, standalone and inside the fleet.

* **standalone**: the Ape-X preset's learner core (``cartpole`` by default) in this process, one
  torch thread, its replay filled with synthetic transitions of the preset's environment; the
  median of ``--repeats`` timed ``learn()`` calls (the gradient step and the priority update, as
  the fleet runs them), after a warm-up;
* **in the fleet**: ``rlfleet train PRESET`` for ``--fleet-seconds`` (no solve stop), reading the
  learner's own ``learner/update_ms`` (the mean time inside ``learn()`` per report interval) and
  ``learner/updates_per_s`` from the run's metrics (median over the rows after the first five
  seconds), next to the run's env steps/s.

The difference is what the machine's other processes (actors, evaluator) cost the learner.
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

from benchmarks.children import launch_child, output_tail, train_command
from benchmarks.machine import machine_info


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="rlfleet bench learner", description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="cartpole", help="an Ape-X preset (cartpole)")
    p.add_argument("--repeats", type=int, default=500, help="timed updates standalone (500)")
    p.add_argument("--fleet-seconds", type=float, default=20.0, help="fleet run length (20)")
    p.add_argument("--json", default=None, metavar="PATH")
    return p.parse_args(argv)


def standalone(preset: str, repeats: int) -> dict[str, Any]:
    """Median and quartiles of ``learn()`` in ms, one thread, synthetic transitions."""
    import numpy as np
    import torch

    from rlfleet.agents.apex.learner import ApexLearner
    from rlfleet.cli.presets import build_config
    from rlfleet.envs.spec import probe_env

    torch.set_num_threads(1)
    config = build_config(preset, [])
    env = probe_env(config.env.id, config.env.kwargs)
    learner = ApexLearner(config, env, seed=0)
    n, rng = 10_000, np.random.default_rng(0)

    def sample_obs() -> np.ndarray:  # the cost does not depend on the values
        if np.dtype(env.obs_dtype).kind == "u":
            return rng.integers(0, 255, size=(n, *env.obs_shape)).astype(env.obs_dtype)
        return rng.normal(0.0, 0.5, size=(n, *env.obs_shape)).astype(env.obs_dtype)

    learner.store.add(
        {
            "obs": sample_obs(),
            "next_obs": sample_obs(),
            "action": rng.integers(0, env.num_actions, n).astype(np.int64),
            "reward": np.ones(n, np.float32),
            "discount": np.full(n, config.algo.gamma**config.algo.n_step, np.float32),
        },
        np.ones(n, np.float32),
    )
    batch_size = config.learner.batch_size
    batches = [learner.to_batch(learner.store.draw(batch_size, 0.4)) for _ in range(repeats + 50)]
    for batch in batches[:50]:
        learner.learn(batch)
    times = []
    for batch in batches[50:]:
        start = time.perf_counter()
        learner.learn(batch)
        times.append(1000.0 * (time.perf_counter() - start))
    q1, median, q3 = statistics.quantiles(times, n=4)
    return {"median_ms": median, "q1_ms": q1, "q3_ms": q3, "updates": repeats}


def in_fleet(preset: str, seconds: float) -> dict[str, Any]:
    """``learner/update_ms`` and rates of a real run of ``preset``."""
    from rlfleet.fleet.metrics import read_metrics

    run_dir = tempfile.mkdtemp(prefix="rlfleet-bench-learner-")
    settings = {
        "run.max_seconds": str(seconds),
        "run.stop_on_solve": "false",
        "run.total_env_steps": "0",
        "run.log_interval_s": "0.5",
    }
    child = launch_child(
        lambda _launch: train_command(preset, run_dir, settings, []),
        timeout_s=seconds + 120.0,
        kill_wait_s=10.0,
    )
    if child.returncode != 0:
        raise SystemExit(f"rlfleet bench learner: the run failed: {output_tail(child.stderr)}")
    metrics = read_metrics(run_dir)

    def steady(name: str) -> float | None:
        values = [row[3] for row in metrics.get(name, []) if row[0] >= 5.0]
        return statistics.median(values) if values else None

    return {
        "update_ms": steady("learner/update_ms"),
        "updates_per_s": steady("learner/updates_per_s"),
        "env_steps_per_s": steady("env/steps_per_s"),
        "wait_fraction": steady("learner/wait_fraction"),
        "seconds": seconds,
        "run_dir": run_dir,
    }


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    info = machine_info(("torch",))
    alone = standalone(args.preset, args.repeats)
    fleet = in_fleet(args.preset, args.fleet_seconds)
    print(f"{args.preset}: one learner update (learn(): gradient step + priority update)")
    print(
        f"  standalone, 1 thread: median {alone['median_ms']:.3f} ms "
        f"(quartiles {alone['q1_ms']:.3f}-{alone['q3_ms']:.3f}) over {alone['updates']} updates"
    )
    update_ms = fleet["update_ms"]
    print(
        f"  in the fleet ({args.fleet_seconds:g} s run): "
        f"{'-' if update_ms is None else f'{update_ms:.3f}'} ms per update, "
        f"{fleet['updates_per_s'] or 0:,.0f} updates/s, {fleet['env_steps_per_s'] or 0:,.0f} "
        f"env steps/s, learner waiting {100 * (fleet['wait_fraction'] or 0):.0f}% of the time"
    )
    info["load_avg_end"] = os.getloadavg()
    if args.json:
        payload = {"machine": info, "preset": args.preset, "standalone": alone, "fleet": fleet}
        Path(args.json).write_text(json.dumps(payload, indent=1))
        print(f"wrote {args.json}")
    return 0
