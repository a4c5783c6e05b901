"""``rlfleet netsim``: list scenarios and evaluate congestion-control schemes.

    rlfleet netsim scenarios
    rlfleet netsim eval [--scenarios calibrated | --heldout] [--schemes cubic,bbr,copa] [--out DIR]
                        [--duration S] [--seeds 0,1,2] [--flows N --interval S]
    rlfleet netsim latency checkpoint:PATH [--n 2000] [--out latency.json]

A scheme ``checkpoint:PATH`` is turned into a greedy policy with ``policy_loader(PATH)``,
``sampled:PATH`` into one that samples its actions from the policy (as the actors did in
training) with ``sampling_loader(PATH)``; ``A+B`` runs one flow of each on the bottleneck
(``checkpoint:X+cubic``, ``checkpoint:X+checkpoint:X``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np

from rlfleet.envs.netsim.delays import parse_action_delay
from rlfleet.errors import ConfigError, RlfleetError

PolicyLoader = Callable[[str], Callable[[np.ndarray], int]]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rlfleet netsim", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("scenarios", help="list the built-in scenarios and samplers")
    e = sub.add_parser("eval", help="Pantheon-style evaluation of schemes on scenarios")
    e.add_argument(
        "--scenarios",
        default="calibrated",
        help="comma list: names, numbers 1-18, 'calibrated', 'heldout', 'all', or TOML files",
    )
    e.add_argument(
        "--heldout",
        action="store_true",
        help="evaluate on the 12 Pantheon scenarios the samplers never draw (not the calibrated)",
    )
    e.add_argument(
        "--schemes",
        default="cubic,bbr,copa,vegas,newreno",
        help="comma list: newreno,cubic,bbr,copa,vegas,fixed:N,checkpoint:PATH (greedy), "
        "sampled:PATH (actions sampled from the policy, as in training); A+B = one flow of each "
        "sharing the bottleneck, started --interval apart",
    )
    e.add_argument("--out", default="netsim_eval", help="output folder (JSON, CSV, PNGs)")
    e.add_argument("--duration", type=float, default=30.0, help="seconds per run (Pantheon: 30)")
    e.add_argument("--seeds", default="0", help="comma list of seeds")
    e.add_argument("--flows", type=int, default=1, help="flows per run (Pantheon multi-flow: 3)")
    e.add_argument("--interval", type=float, default=10.0, help="seconds between flow starts")
    e.add_argument(
        "--action-delay-ms",
        default="0",
        help="delayed-action Delta for checkpoint:* schemes (ms; 0 = synchronous), or a "
        "distribution: uniform:LO,HI, lognormal:MEDIAN,SIGMA,MAX, empirical:FILE",
    )
    e.add_argument("--no-progress", action="store_true", help="no live progress display")
    lat = sub.add_parser(
        "latency",
        help="measure a policy's inference time per action (JSON samples for "
        "action_delay_ms = 'empirical:FILE')",
    )
    lat.add_argument("scheme", help="checkpoint:PATH")
    lat.add_argument("--n", type=int, default=2000, help="actions to time")
    lat.add_argument("--out", default="latency.json", help="output JSON")
    return p


def _list_scenarios() -> int:
    from rich.console import Console
    from rich.table import Table

    from rlfleet.envs.netsim.scenarios import PANTHEON, SAMPLERS

    t = Table(title="netsim scenarios (Pantheon)")
    for col in ("#", "name", "uplink", "one-way ms", "loss", "queue", "BDP pkts", "description"):
        t.add_column(col)
    for i, (name, sc) in enumerate(PANTHEON.items(), 1):
        q = (
            f"{sc.up_queue_packets} pkts"
            if sc.up_queue_packets is not None
            else f"{sc.up_queue_bytes} B"
            if sc.up_queue_bytes is not None
            else "unbounded"
        )
        t.add_row(
            str(i),
            name,
            sc.uplink.label(),
            f"{sc.delay_ms:g}",
            f"{sc.loss_up:g}",
            q,
            f"{sc.bdp_packets():.1f}",
            sc.description,
        )
    c = Console(width=150)
    c.print(t)
    c.print("samplers (a new scenario each episode): " + ", ".join(SAMPLERS))
    return 0


def _eval(
    args: argparse.Namespace,
    policy_loader: PolicyLoader | None,
    sampling_loader: PolicyLoader | None = None,
) -> int:
    from rlfleet.envs.netsim.evaluate import EvalConfig, evaluate, summarise_rows, write_results
    from rlfleet.envs.netsim.scenarios import resolve_scenarios

    names = ["heldout"] if args.heldout else [s for s in args.scenarios.split(",") if s]
    scenarios = resolve_scenarios(names)
    delay = args.action_delay_ms
    parse_action_delay(float(delay) if _is_number(delay) else delay)  # fail before any run
    delay = float(delay) if _is_number(delay) else delay
    schemes = [s for s in args.schemes.split(",") if s]
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s]
    except ValueError:
        raise ConfigError(f"--seeds must be a comma list of integers, got {args.seeds!r}") from None
    if args.duration <= 0:
        raise ConfigError(f"--duration must be > 0 seconds, got {args.duration}")
    if args.flows < 1:
        raise ConfigError(f"--flows must be >= 1, got {args.flows}")
    policies = {}
    for s in {p for scheme in schemes for p in scheme.split("+")}:
        kind, _, path = s.partition(":")
        if kind in ("checkpoint", "sampled"):
            loader = policy_loader if kind == "checkpoint" else sampling_loader
            if loader is None:
                raise ConfigError(
                    f"scheme {s!r} needs a policy loader; run it through `rlfleet netsim eval` "
                    "(which passes the checkpoint loaders) or pass policy_loader / "
                    "sampling_loader to main()"
                )
            policies[s] = loader(path)
    cfg = EvalConfig(
        scenarios=scenarios,
        schemes=schemes,
        duration_s=args.duration,
        seeds=seeds,
        n_flows=args.flows,
        interval_s=args.interval,
        policies=policies,
        env_kwargs={"action_delay_ms": delay},
    )
    total = len(scenarios) * len(schemes) * len(seeds)
    t0 = time.time()
    if args.no_progress or not sys.stderr.isatty():
        rows = evaluate(cfg)
    else:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            transient=True,
        ) as prog:
            task = prog.add_task("netsim eval", total=total)
            rows = evaluate(cfg, progress=lambda msg: prog.update(task, advance=1, description=msg))
    meta = {
        "scenarios": [s.name for s in scenarios],
        "schemes": schemes,
        "seeds": seeds,
        "duration_s": args.duration,
        "flows": args.flows,
        "interval_s": args.interval,
        "action_delay_ms": delay,
        "heldout": bool(args.heldout),
        "wall_s": round(time.time() - t0, 2),
    }
    paths = write_results(rows, args.out, meta)
    _print_summary(summarise_rows(rows))
    _print_dominance(paths["dominance_rows"])
    print(
        f"wrote {paths['json']}, {paths['csv']}, {paths['dominance']}, {paths['pareto']} and "
        f"{len(paths['png'])} plot(s)"
    )
    return 0


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _print_dominance(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="Pareto dominance per scenario (mean throughput vs mean p95 delay)")
    for col in ("scenario", "scheme", "dominated by", "dominates", "tput / best classic", "target"):
        t.add_column(col)
    for r in rows:
        frac = r.get("tput_frac_best_classic")
        t.add_row(
            r["scenario"],
            r["scheme"],
            " ".join(r["dominated_by"]) or "-",
            " ".join(r["dominates"]) or "-",
            "" if frac is None else f"{frac:.2f}",
            "" if "meets_target" not in r else ("yes" if r["meets_target"] else "no"),
        )
    Console(width=160).print(t)


def _latency(args: argparse.Namespace, policy_loader: PolicyLoader | None) -> int:
    """Time ``--n`` single-observation actions of a policy on netsim observations."""
    import json

    from rlfleet.envs.netsim.env import NetSimEnv
    from rlfleet.envs.netsim.evaluate import policy_env_kwargs

    if not args.scheme.startswith("checkpoint:") or policy_loader is None:
        raise ConfigError(
            f"latency needs checkpoint:PATH (through `rlfleet netsim`), got {args.scheme!r}"
        )
    if args.n < 1:
        raise ConfigError(f"--n must be >= 1, got {args.n}")
    policy = policy_loader(args.scheme.partition(":")[2])
    env = NetSimEnv("random_traces_0_5", duration_s=30.0, **policy_env_kwargs(policy))
    obs, _ = env.reset(seed=0)
    samples = []
    for _ in range(args.n):
        t0 = time.perf_counter()
        a = int(policy(obs))
        samples.append((time.perf_counter() - t0) * 1000.0)
        obs, _, _, trunc, _ = env.step(a)
        if trunc:
            obs, _ = env.reset()
    doc = {
        "scheme": args.scheme,
        "samples_ms": samples,
        "median_ms": float(np.median(samples)),
        "p95_ms": float(np.percentile(samples, 95)),
    }
    with open(args.out, "w") as fh:
        json.dump(doc, fh)
    print(
        f"{args.n} actions: median {doc['median_ms']:.3f} ms, p95 {doc['p95_ms']:.3f} ms -> "
        f'{args.out} (use env.kwargs action_delay_ms = "empirical:{args.out}")'
    )
    return 0


def _print_summary(summary: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="netsim eval (mean over seeds)")
    for col in (
        "scenario",
        "scheme",
        "tput Mbit/s",
        "util",
        "mean OWD ms",
        "p95 OWD ms",
        "loss %",
        "jain",
        "flows Mbit/s",
    ):
        t.add_column(col)
    for r in summary:
        t.add_row(
            r["scenario"],
            r["scheme"],
            f"{r['throughput_mbps']:.2f}",
            f"{r['utilisation']:.2f}",
            f"{r['delay_mean_ms']:.1f}",
            f"{r['delay_p95_ms']:.1f}",
            f"{100 * r['loss']:.2f}",
            f"{r['jain']:.3f}",
            " / ".join(f"{x:.2f}" for x in r.get("flow_throughput_mbps", [])),
        )
    Console(width=150).print(t)


def main(
    argv: list[str] | None = None,
    policy_loader: PolicyLoader | None = None,
    sampling_loader: PolicyLoader | None = None,
) -> int:
    """Entry point; returns a process exit code (2 on a usage/config error). ``policy_loader``
    turns ``checkpoint:PATH`` into a greedy policy, ``sampling_loader`` ``sampled:PATH`` into
    one that samples its actions."""
    args = _parser().parse_args(argv)
    try:
        if args.cmd == "scenarios":
            return _list_scenarios()
        if args.cmd == "latency":
            return _latency(args, policy_loader)
        return _eval(args, policy_loader, sampling_loader)
    except RlfleetError as exc:
        print(f"rlfleet netsim: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
