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
from pathlib import Path

from rlfleet.errors import ConfigError, RlfleetError


def _add_redis_arg(p: argparse.ArgumentParser) -> None:
    """``--redis URL`` of the commands that join a running Redis run."""
    p.add_argument(
        "--redis",
        default=None,
        metavar="URL",
        help="the run's Redis server, redis[s]://[USER]:PASSWORD@HOST:6379/0 "
        "(default: $RLFLEET_REDIS_URL)",
    )


def _redis_url(args: argparse.Namespace, command: str) -> str:
    """``--redis`` or ``$RLFLEET_REDIS_URL``; a clear error naming both when neither is set."""
    import os

    from rlfleet.cli.train import REDIS_URL_ENV

    url = args.redis or os.environ.get(REDIS_URL_ENV)
    if not url:
        raise ConfigError(f"rlfleet {command} needs --redis URL (or ${REDIS_URL_ENV})")
    if getattr(args, "run", None) is not None:  # refused before connecting, not after the wait
        from rlfleet.fleet.redis_run import check_run_name

        check_run_name(args.run)
    return url


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
    _add_redis_arg(p)
    p.add_argument("--run", required=True, metavar="NAME", help="the run to join")
    p.add_argument("--actors", type=int, default=1, metavar="K", help="actor processes (1)")
    p.add_argument(
        "--wait",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long to wait for the run's learner to start (120)",
    )
    _evaluator_parser(sub)
    _replay_parser(sub)
    from rlfleet.cli import record

    record.add_parser(sub)
    from rlfleet.cli import seq

    seq.add_parser(sub)
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


def cmd_actor(args: argparse.Namespace) -> int:

    from rlfleet.fleet.hosts.actors import RemoteActors
    from rlfleet.fleet.launcher import warm_up

    url = _redis_url(args, "actor")
    if args.actors < 1:
        raise ConfigError(f"--actors must be >= 1, got {args.actors}")
    warm_up()
    result = RemoteActors(url, args.run, args.actors).run(wait_s=args.wait)
    print(
        f"run {result.run}: {result.started} actor processes ({result.restarts} restarts); "
        f"ended: {result.stop_reason}"
    )
    return 0


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


def _evaluator_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluator",
        help="greedy evaluations of a running Redis run's parameters, on this host",
    )
    _add_redis_arg(p)
    p.add_argument("--run", required=True, metavar="NAME", help="the run to evaluate")
    p.add_argument(
        "--out", default=None, metavar="DIR", help="results folder (default: runs/NAME-eval-<time>)"
    )
    p.add_argument(
        "--interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds between evaluations, each on a new version (default: the run's eval.interval_s)",
    )
    p.add_argument(
        "--episodes",
        type=int,
        default=None,
        metavar="N",
        help="episodes per evaluation (default: the run's eval.episodes)",
    )
    p.add_argument("--seed", type=int, default=None, help="evaluation seed (run.seed + 177)")
    p.add_argument(
        "--wait",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long to wait for the run's learner to start (120)",
    )
    p.add_argument(
        "--learner-grace",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="end when no learner has been alive this long without a stop flag (15)",
    )


def cmd_evaluator(args: argparse.Namespace) -> int:

    from rlfleet.fleet.hosts.evaluator import RemoteEvaluator

    url = _redis_url(args, "evaluator")
    evaluator = RemoteEvaluator(
        url,
        args.run,
        args.out,
        interval_s=args.interval,
        episodes=args.episodes,
        seed=args.seed,
        learner_grace_s=args.learner_grace,
    )
    result = evaluator.run(wait_s=args.wait)
    best = max((row["return_mean"] for row in result.evaluations), default=None)
    summary = f", best mean return {best:.1f}" if best is not None else ""
    print(
        f"run {result.run}: {len(result.evaluations)} evaluations{summary} in {result.out_dir}; "
        f"ended: {result.stop_reason}"
    )
    return 0


def _replay_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="the replay service of a Redis run (transport.replay_service = true) on this host: "
        "keeps the prioritized replay next to Redis, sends the learner sampled batches",
    )
    _add_redis_arg(p)
    p.add_argument("--run", required=True, metavar="NAME", help="the run to serve")
    p.add_argument(
        "--wait",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long to wait for the run's learner to start (120)",
    )
    p.add_argument(
        "--learner-grace",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="end when no learner has been alive this long without a stop flag (30)",
    )
    p.add_argument("--quiet", action="store_true", help="no status line every second")


def cmd_replay(args: argparse.Namespace) -> int:

    from rlfleet.fleet.hosts.service import RemoteService

    url = _redis_url(args, "replay")

    def report(stats: dict) -> None:
        print(service.describe(stats), flush=True)

    def standby(holder: str) -> None:
        print(f"run {args.run} is served by {holder}: waiting as a standby", flush=True)

    service = RemoteService(url, args.run, learner_grace_s=args.learner_grace)
    result = service.run(
        wait_s=args.wait, report=None if args.quiet else report, on_standby=standby
    )
    stats = result.stats
    print(
        f"run {result.run}: replay service sent {stats.get('batches', 0):,} batches, applied "
        f"{stats.get('updates', 0):,} priority updates; ended: {result.stop_reason}"
    )
    return 0


def checkout_root() -> Path | None:
    """The source checkout this rlfleet runs from (the folder holding ``benchmarks/``), or None
    for an installed wheel, which does not ship the benchmarks."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "benchmarks" / "__init__.py").is_file() else None


def benchmark_names(root: Path) -> list[str]:
    """``rlfleet bench`` names: every module or package of ``benchmarks/`` with a ``main``
    (``replay_service.py`` is ``replay-service``)."""
    names = []
    for path in sorted((root / "benchmarks").iterdir()):
        source = path / "__init__.py" if path.is_dir() else path
        if path.name.startswith("_") or source.suffix != ".py" or not source.is_file():
            continue
        if "\ndef main(" in source.read_text() or "import main" in source.read_text():
            names.append(path.stem.replace("_", "-"))
    return names


def cmd_bench(args: argparse.Namespace) -> int:
    """Dispatch to the checkout's ``benchmarks/`` folder (outside the library)."""
    import importlib

    root = checkout_root()
    if root is None:
        raise RlfleetError(
            "the benchmarks live in the source checkout (benchmarks/), not in the installed "
            "package: run `rlfleet bench` from a clone installed with `pip install -e .`"
        )
    names = benchmark_names(root)
    if args.name not in names:
        raise RlfleetError(f"unknown benchmark {args.name!r}; valid: {', '.join(names)}")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    module = importlib.import_module(f"benchmarks.{args.name.replace('-', '_')}")
    return int(module.main(args.args) or 0)


def cmd_netsim(args: argparse.Namespace) -> int:
    from rlfleet.cli.netsim import main as netsim_main
    from rlfleet.cli.policies import load_greedy_policy

    return int(netsim_main(args.args, policy_loader=load_greedy_policy) or 0)


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
