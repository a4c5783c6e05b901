"""`rlfleet bench randomization`: a policy trained with domain randomization vs one trained
without, both evaluated on physical parameters outside the randomized training range.

Protocol: for every seed, two runs of the same preset with the same fixed env-step budget
(``run.stop_on_solve = false``, so neither stops early): one on the nominal environment, one with
``env.randomize`` (``--train-randomize``). Each run's *final* parameters (``checkpoints/latest``:
the best-evaluated ones would be chosen on each arm's own evaluation environment) are then
evaluated greedily for ``--episodes`` episodes at every value of ``--test-param`` in
``--test-values`` (the other parameters nominal), with the same evaluation seeds for both arms.
The report gives, per arm and test value, the mean over seeds of the per-run mean return, the
spread over seeds, and a PNG of both curves.

Default: Ape-X DPG on Pendulum-v1 (``dpg-pendulum``), trained for 25,000 env steps (the preset
solves the nominal task in 13-17k) with the pendulum's mass drawn from [0.7, 1.4] and its length
from [0.8, 1.25]; tested at masses 1.0 (nominal) to 2.5.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Any

import numpy as np

from benchmarks.machine import machine_info
from benchmarks.side_by_side import add_train_overrides, write_json

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the tomli backport (an rlfleet dependency there)
    import tomli as tomllib  # type: ignore[no-redef]

ARMS = ("nominal", "randomized")


def parse_table(text: str) -> dict[str, Any]:
    """A TOML inline table (``{mass = [0.7, 1.4], length = [0.8, 1.25]}``) as a dict."""
    try:
        return dict(tomllib.loads(f"t = {text}")["t"])
    except (tomllib.TOMLDecodeError, TypeError, ValueError) as exc:
        raise SystemExit(f"--train-randomize {text!r} is not a TOML inline table: {exc}") from exc


def check_tables(args: argparse.Namespace, randomize: dict[str, Any]) -> None:
    """The training ranges and every test value checked against the preset's environment
    (ConfigError / EnvError naming the valid parameters)."""
    from rlfleet.cli.presets import build_config
    from rlfleet.envs.randomize import parse_randomization

    env_id = build_config(args.preset, list(args.overrides)).env.id
    parse_randomization(env_id, randomize)
    for value in args.test_values:
        parse_randomization(env_id, {args.test_param: value})


def train_arm(args: argparse.Namespace, seed: int, arm: str, randomize: dict[str, Any]) -> str:
    """Train one run (its own processes) and return its run folder."""
    from rlfleet.api import train

    run_dir = tempfile.mkdtemp(prefix=f"rlfleet-bench-dr-{arm}-{seed}-")
    overrides = [
        f"run.seed={seed}",
        f"run.total_env_steps={args.env_steps}",
        f"run.max_seconds={args.max_seconds}",
        "run.stop_on_solve=false",
        *args.overrides,
    ]
    if arm == "randomized":
        items = ", ".join(f"{k} = {json.dumps(v)}" for k, v in randomize.items())
        overrides.append(f"env.randomize={{{items}}}")
    os.rmdir(run_dir)  # train() creates the folder itself and refuses a used one
    train(args.preset, overrides=overrides, run_dir=run_dir)
    return run_dir


def evaluate_arm(run_dir: str, args: argparse.Namespace) -> list[float]:
    """Mean greedy return of a run's final parameters at every test value."""
    from rlfleet.agents.common.checkpoint import latest_checkpoint
    from rlfleet.api import evaluate, load_policy

    policy = load_policy(latest_checkpoint(run_dir))
    out = []
    for value in args.test_values:
        result = evaluate(
            policy, episodes=args.episodes, seed=10_000, randomize={args.test_param: value}
        )
        out.append(float(np.mean(result.returns)))
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rlfleet bench randomization``; returns the exit code."""
    args = _parse(argv)
    randomize = parse_table(args.train_randomize)
    check_tables(args, randomize)  # before any training: a bad name would waste every run
    machine = machine_info(("torch", "gymnasium"))
    print(
        f"{args.preset}: trained {args.env_steps:,} env steps without / with env.randomize = "
        f"{args.train_randomize}; tested at {args.test_param} in {args.test_values}, "
        f"{args.episodes} greedy episodes each; seeds {args.seeds}; load "
        f"{machine['load_avg_start'][0]:.1f}",
        flush=True,
    )
    returns: dict[str, list[list[float]]] = {arm: [] for arm in ARMS}
    runs = []
    for seed in args.seeds:
        for arm in ARMS if seed % 2 == 0 else ARMS[::-1]:  # alternate: load drift hits both
            t0 = time.time()
            run_dir = train_arm(args, seed, arm, randomize)
            with open(os.path.join(run_dir, "final_eval.json")) as f:
                final = json.load(f)
            row = evaluate_arm(run_dir, args)
            returns[arm].append(row)
            runs.append(
                {
                    "seed": seed,
                    "arm": arm,
                    "train_s": round(time.time() - t0, 1),
                    "env_steps": final.get("env_steps"),
                    "returns": row,
                }
            )
            print(f"  seed {seed} {arm}: " + "  ".join(f"{r:8.1f}" for r in row), flush=True)
            shutil.rmtree(run_dir, ignore_errors=True)
    summary = {
        arm: {
            "mean": np.mean(returns[arm], axis=0).round(1).tolist(),
            "std_over_seeds": np.std(returns[arm], axis=0).round(1).tolist(),
        }
        for arm in ARMS
    }
    print(f"\n{args.test_param:>12} " + " ".join(f"{v:>16g}" for v in args.test_values))
    for arm in ARMS:
        cells = [
            f"{m:8.1f} ± {s:5.1f}"
            for m, s in zip(summary[arm]["mean"], summary[arm]["std_over_seeds"], strict=True)
        ]
        print(f"{arm:>12} " + " ".join(f"{c:>16}" for c in cells))
    print(
        "(mean over seeds of each run's mean greedy return; ± the std over seeds; final "
        "parameters of each run)"
    )
    if args.png:
        _plot(args, summary, randomize)
    if args.json:
        payload = {
            "benchmark": "randomization",
            "protocol": (__doc__ or "").strip(),
            "preset": args.preset,
            "env_steps": args.env_steps,
            "train_randomize": randomize,
            "test_param": args.test_param,
            "test_values": args.test_values,
            "episodes": args.episodes,
            "overrides": args.overrides,
            "machine": machine,
            "runs": runs,
            "summary": summary,
        }
        write_json(args.json, payload, machine)  # records the load at the end in machine
    return 0


def _plot(args: argparse.Namespace, summary: dict[str, Any], randomize: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    trained = randomize.get(args.test_param)
    if isinstance(trained, list) and len(trained) >= 2:  # the randomized arm's training range
        ax.axvspan(trained[0], trained[1], color="0.9", label="training range (randomized)")
    for arm in ARMS:
        mean = np.asarray(summary[arm]["mean"])
        std = np.asarray(summary[arm]["std_over_seeds"])
        ax.plot(args.test_values, mean, marker="o", label=arm)
        ax.fill_between(args.test_values, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel(f"{args.test_param} at test time")
    ax.set_ylabel("greedy return (mean over seeds)")
    ax.set_title(f"{args.preset}: trained with vs without domain randomization")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.png, dpi=120)
    print(f"wrote {args.png}")


def _parse(argv: list[str] | None) -> argparse.Namespace:

    p = argparse.ArgumentParser(
        prog="rlfleet bench randomization", description=(__doc__ or "").splitlines()[0]
    )
    p.add_argument("--preset", default="dpg-pendulum")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="default: 0 1 2")
    p.add_argument("--env-steps", type=int, default=25_000, help="training budget per run")
    p.add_argument("--max-seconds", type=float, default=600.0, help="wall-clock cap per run")
    p.add_argument(
        "--train-randomize",
        default="{mass = [0.7, 1.4], length = [0.8, 1.25]}",
        help="env.randomize of the randomized arm (a TOML inline table)",
    )
    p.add_argument("--test-param", default="mass")
    p.add_argument("--test-values", type=float, nargs="+", default=[1.0, 1.5, 1.75, 2.0, 2.25, 2.5])
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--png", metavar="PATH")
    add_train_overrides(p)
    args = p.parse_args(argv)
    if args.episodes < 1 or args.env_steps < 1:
        p.error("--episodes and --env-steps must be >= 1")
    if not args.seeds:
        p.error("--seeds needs at least one seed")
    return args


if __name__ == "__main__":
    sys.exit(main())
