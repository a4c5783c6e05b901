"""``rlfleet`` command line: the only place flags exist.

    rlfleet train [PRESET] [--set section.key=value ...] [--run-dir DIR] [--resume DIR]
    rlfleet plot RUN [--out PNG]
    rlfleet presets                      list presets
    rlfleet config [PRESET]              every config key with its default and meaning
    rlfleet bench replay|cartpole|netsim [...]
    rlfleet netsim eval|scenarios [...]

Heavy imports (torch, numba) happen inside the commands, so ``rlfleet --help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
import time

from rlfleet.errors import RlfleetError

BENCHMARKS = {
    "replay": "rlfleet.bench.replay",
    "cartpole": "rlfleet.bench.cartpole",
    "netsim": "rlfleet.bench.netsim",
}


def _train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train an agent with a local fleet of actors")
    p.add_argument("preset", nargs="?", default=None, help="preset name (default: cartpole)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config value (repeatable)",
    )
    p.add_argument(
        "--run-dir", default=None, help="run folder (default: runs/<preset>-<timestamp>)"
    )
    p.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue a run from its latest checkpoint (counters and curves continue)",
    )
    p.add_argument("--quiet", action="store_true", help="no live progress display")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlfleet", description="Scalable deep RL: a fleet of actors feeding one learner."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    p = sub.add_parser("plot", help="draw a run's learning curves to PNG")
    p.add_argument("run", help="run folder")
    p.add_argument("--out", default=None, help="PNG path (default: RUN/curves.png)")
    sub.add_parser("presets", help="list the training presets")
    p = sub.add_parser("config", help="list every config key with its default and meaning")
    p.add_argument("preset", nargs="?", default=None)
    p = sub.add_parser("bench", help="benchmarks (print a table, write JSON)")
    p.add_argument("name", help=f"one of: {', '.join(BENCHMARKS)}")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p = sub.add_parser("netsim", help="the congestion-control simulator: eval, scenarios")
    p.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def cmd_train(args: argparse.Namespace, start_time: float) -> int:
    from rlfleet.cli.train import train

    result = train(
        preset=args.preset,
        overrides=args.overrides,
        run_dir=args.run_dir,
        resume=args.resume,
        start_time=start_time,
        show_progress=not args.quiet,
    )
    return 0 if result is not None else 1


def cmd_bench(args: argparse.Namespace) -> int:
    import importlib

    if args.name not in BENCHMARKS:
        raise RlfleetError(f"unknown benchmark {args.name!r}; valid: {', '.join(BENCHMARKS)}")
    module = importlib.import_module(BENCHMARKS[args.name])
    return int(module.main(args.args) or 0)


def cmd_netsim(args: argparse.Namespace) -> int:
    from rlfleet.cli.netsim import main as netsim_main
    from rlfleet.cli.policies import load_greedy_policy

    return int(netsim_main(args.args, policy_loader=load_greedy_policy) or 0)


def main(argv: list[str] | None = None) -> int:
    start_time = time.time()
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return cmd_train(args, start_time)
        if args.command == "plot":
            from rlfleet.cli.plot import plot_run

            print(plot_run(args.run, args.out))
            return 0
        if args.command == "presets":
            from rlfleet.cli.presets import describe_presets

            print(describe_presets())
            return 0
        if args.command == "config":
            from rlfleet.cli.presets import describe_config

            print(describe_config(args.preset))
            return 0
        if args.command == "bench":
            return cmd_bench(args)
        if args.command == "netsim":
            return cmd_netsim(args)
    except RlfleetError as exc:
        print(f"rlfleet: error: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
