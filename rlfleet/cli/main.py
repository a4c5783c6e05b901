"""``rlfleet`` command line: the only place flags exist.

    rlfleet train [PRESET] [--set section.key=value ...] [--run-dir DIR] [--resume DIR]
                  [--transport local|redis] [--redis URL] [--run NAME] [--keep-keys]
                  [--teacher RUN_DIR_OR_CHECKPOINT] [--in-process]
                  [--ray [ADDRESS]] [--ray-max-restarts N] [--ray-learner-gpus N]
    rlfleet learner [PRESET] --redis URL --run NAME [train's options]   learner + evaluator here
    rlfleet actor --redis URL --run NAME [--actors K]                   actors that join a run
    rlfleet evaluator --redis URL --run NAME [--out DIR] [--interval S]  evaluations on this host
    rlfleet replay --redis URL --run NAME                               the run's replay service
    rlfleet record ENV_ID (--policy MODULE:FUNCTION | --checkpoint PATH) --out FILE.npz
    rlfleet plot RUN [--out PNG]
    rlfleet export RUN --format onnx|torchscript --out FILE   the acting network, checked
    rlfleet tune PRESET --space FILE.toml --trials N [--study-dir DIR] [--set ...]   Optuna
    rlfleet presets                      list presets
    rlfleet config [PRESET]              every config key with its default and meaning
    rlfleet bench replay|cartpole|pendulum|netsim|transport|replay-service|minatar|demos|dagger [...]
    rlfleet netsim eval|scenarios [...]

Heavy imports (torch, numba) happen inside the commands, so ``rlfleet --help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
import time

from rlfleet.cli.bench import cmd_bench
from rlfleet.cli.hosts import (
    add_redis_arg,
    cmd_actor,
    cmd_evaluator,
    cmd_replay,
    evaluator_parser,
    replay_parser,
)
from rlfleet.errors import ConfigError, RlfleetError


def _train_parser(sub: argparse._SubParsersAction, name: str = "train") -> None:
    if name == "learner":
        p = sub.add_parser(
            "learner",
            help="the learner, evaluator and run folder of a Redis run on this host; actors "
            "join from other hosts with `rlfleet actor`",
        )
    else:
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
    p.add_argument(
        "--transport",
        choices=("local", "redis"),
        default=None,
        help="data plane between the roles (default: the config's transport.kind, local)",
    )
    p.add_argument(
        "--redis",
        default=None,
        metavar="URL",
        help="Redis server for --transport redis, redis[s]://[USER]:PASSWORD@HOST:6379/0 "
        "(default: $RLFLEET_REDIS_URL; implies --transport redis)",
    )
    p.add_argument(
        "--run",
        default=None,
        metavar="NAME",
        help="Redis run name: keys live under rlfleet:NAME: (default: the run folder's name)",
    )
    p.add_argument(
        "--keep-keys", action="store_true", help="keep the run's Redis keys when it ends"
    )
    p.add_argument(
        "--teacher",
        default=None,
        metavar="RUN_DIR_OR_CHECKPOINT",
        help="kickstart an IMPALA student from this teacher (an Ape-X or IMPALA run folder or "
        "checkpoint); the lambda schedule is the config's [kickstart] section",
    )
    if name == "train":
        p.add_argument(
            "--ray",
            nargs="?",
            const="",
            default=None,
            metavar="ADDRESS",
            help="place the roles on a Ray cluster: auto, ray://HOST:10001, HOST:6379, or no "
            "address for a local cluster started for the run (needs the ray extra; data over "
            "Redis: --redis URL, or a redis-server started on the learner's node)",
        )
        p.add_argument(
            "--ray-max-restarts",
            type=int,
            default=3,
            metavar="N",
            help="with --ray: times Ray restarts a dead actor, evaluator or service (3)",
        )
        p.add_argument(
            "--ray-learner-gpus",
            type=float,
            default=0.0,
            metavar="N",
            help="with --ray: GPUs the learner asks for (0: rlfleet's pinned torch is CPU-only)",
        )
    p.add_argument(
        "--in-process",
        action="store_true",
        help="run every role as a thread of this process instead of its own process (debugging: "
        "a breakpoint in a learner step works; slower)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlfleet", description="Scalable deep RL: a fleet of actors feeding one learner."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    _train_parser(sub, "learner")
    p = sub.add_parser("actor", help="actor processes that join a running Redis run")
    add_redis_arg(p)
    p.add_argument("--run", required=True, metavar="NAME", help="the run to join")
    p.add_argument("--actors", type=int, default=1, metavar="K", help="actor processes (1)")
    p.add_argument(
        "--wait",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long to wait for the run's learner to start (120)",
    )
    evaluator_parser(sub)
    replay_parser(sub)
    from rlfleet.cli import record

    record.add_parser(sub)
    from rlfleet.cli import seq

    seq.add_parser(sub)
    from rlfleet.cli import ocr

    ocr.add_parser(sub)
    p = sub.add_parser("plot", help="draw a run's learning curves to PNG")
    p.add_argument("run", help="run folder")
    p.add_argument("--out", default=None, help="PNG path (default: RUN/curves.png)")
    p = sub.add_parser(
        "export",
        help="write a run's acting network (observation normalisation included) as ONNX or "
        "TorchScript, checked against the run's policy on real observations",
    )
    p.add_argument("run", help="run folder (its best-evaluated policy) or checkpoint folder")
    p.add_argument("--format", required=True, choices=("onnx", "torchscript"))
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    p.add_argument(
        "--check",
        type=int,
        default=1000,
        metavar="N",
        help="observations of the run's environment the export is checked on (1000)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the check's episodes (0)")
    p = sub.add_parser(
        "tune",
        help="hyperparameter search over a preset with Optuna (each trial a run folder; the "
        "study in SQLite, resumable; the best config written as a preset)",
    )
    p.add_argument("preset", help="preset name or TOML file")
    p.add_argument("--space", required=True, metavar="FILE.toml", help="the search space")
    p.add_argument("--trials", type=int, required=True, metavar="N", help="finished trials")
    p.add_argument("--study-dir", default=None, metavar="DIR", help="default: runs/tune-<preset>")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config value of every trial (repeatable), e.g. run.max_seconds=60",
    )
    p.add_argument(
        "--objective",
        choices=("solve_time", "return"),
        default=None,
        help="minimise seconds to solve (default with a solve threshold) or maximise the final "
        "return",
    )
    p.add_argument("--seed", type=int, default=0, help="the sampler's seed (0)")
    sub.add_parser("presets", help="list the training presets")
    p = sub.add_parser("config", help="list every config key with its default and meaning")
    p.add_argument("preset", nargs="?", default=None)
    p = sub.add_parser("bench", help="benchmarks (print a table, write JSON)")
    p.add_argument(
        "name", help="a benchmark of the checkout's benchmarks/ folder, e.g. replay, cartpole"
    )
    p.add_argument("args", nargs=argparse.REMAINDER)
    p = sub.add_parser("netsim", help="the congestion-control simulator: eval, scenarios")
    p.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def cmd_train(args: argparse.Namespace, start_time: float) -> int:
    if not args.in_process and getattr(args, "ray", None) is None:
        from rlfleet.fleet.forkserver import start_forkserver

        # first: the roles' imports (torch) then overlap everything below, imports included
        start_forkserver()
    from rlfleet.cli.train import train

    if args.command == "learner" and not args.run:
        raise ConfigError("rlfleet learner needs --run NAME: the actors join the run by name")
    result = train(
        preset=args.preset,
        overrides=args.overrides,
        run_dir=args.run_dir,
        resume=args.resume,
        start_time=start_time,
        show_progress=not args.quiet,
        transport=args.transport or ("redis" if args.command == "learner" else None),
        redis_url=args.redis,
        run_name=args.run,
        keep_keys=args.keep_keys,
        local_actors=0 if args.command == "learner" else None,
        teacher=args.teacher,
        local_replay=args.command != "learner",  # with `rlfleet learner`: `rlfleet replay`
        in_process=args.in_process,
        ray=getattr(args, "ray", None),
        ray_max_restarts=getattr(args, "ray_max_restarts", 3),
        ray_learner_gpus=getattr(args, "ray_learner_gpus", 0.0),
    )
    return 0 if result is not None else 1


def cmd_tune(args: argparse.Namespace) -> int:
    from rlfleet.api.tune import tune

    try:
        summary = tune(
            args.preset,
            args.space,
            args.trials,
            study_dir=args.study_dir,
            overrides=args.overrides,
            objective=args.objective,
            seed=args.seed,
        )
    except KeyboardInterrupt:
        print("rlfleet tune: interrupted; run the same command again to resume the study")
        return 130
    print(summary.table)
    if summary.best_preset:
        print(f"best config written as a preset: {summary.best_preset}")
    print(f"study: {summary.study_db} (run the same command with more --trials to extend it)")
    return 0


def cmd_netsim(args: argparse.Namespace) -> int:
    from rlfleet.cli.netsim import main as netsim_main
    from rlfleet.cli.policies import load_greedy_policy, load_sampling_policy

    return int(
        netsim_main(
            args.args, policy_loader=load_greedy_policy, sampling_loader=load_sampling_policy
        )
        or 0
    )


def _cwd_on_path() -> None:
    """Make the current folder importable, as ``python -m`` does, so ``env.id =
    "mymodule:MyEnv-v0"`` and ``env.entry_point`` find the user's module when run from its
    folder (the console script's own ``sys.path[0]`` is its bin folder). Roles inherit it."""
    import os

    cwd = os.getcwd()
    if "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)


def main(argv: list[str] | None = None) -> int:
    start_time = time.time()
    args = build_parser().parse_args(argv)
    _cwd_on_path()
    try:
        if args.command in ("train", "learner"):
            return cmd_train(args, start_time)
        if args.command == "actor":
            return cmd_actor(args)
        if args.command == "evaluator":
            return cmd_evaluator(args)
        if args.command == "replay":
            return cmd_replay(args)
        if args.command == "record":
            from rlfleet.cli import record

            return record.run(args)
        if args.command == "eval-seq":
            from rlfleet.cli import seq

            return seq.run(args)
        if args.command == "eval-ocr":
            from rlfleet.cli import ocr

            return ocr.run(args)
        if args.command == "plot":
            from rlfleet.cli.plot import plot_run

            print(plot_run(args.run, args.out))
            return 0
        if args.command == "export":
            from rlfleet.api.export import export_policy

            print(
                export_policy(
                    args.run, args.format, args.out, check_observations=args.check, seed=args.seed
                )
            )
            return 0
        if args.command == "tune":
            return cmd_tune(args)
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
