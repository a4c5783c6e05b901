"""``rlfleet actor | evaluator | replay``: the host commands that join a running Redis run."""

from __future__ import annotations

import argparse

from rlfleet.errors import ConfigError


def add_redis_arg(p: argparse.ArgumentParser) -> None:
    """``--redis URL`` of the commands that join a running Redis run."""
    p.add_argument(
        "--redis",
        default=None,
        metavar="URL",
        help="the run's Redis server, redis[s]://[USER]:PASSWORD@HOST:6379/0 "
        "(default: $RLFLEET_REDIS_URL)",
    )


def redis_url(args: argparse.Namespace, command: str) -> str:
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


def cmd_actor(args: argparse.Namespace) -> int:

    from rlfleet.fleet.hosts.actors import RemoteActors
    from rlfleet.fleet.launcher import warm_up

    url = redis_url(args, "actor")
    if args.actors < 1:
        raise ConfigError(f"--actors must be >= 1, got {args.actors}")
    warm_up()
    result = RemoteActors(url, args.run, args.actors).run(wait_s=args.wait)
    print(
        f"run {result.run}: {result.started} actor processes ({result.restarts} restarts); "
        f"ended: {result.stop_reason}"
    )
    return 0


def evaluator_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluator",
        help="greedy evaluations of a running Redis run's parameters, on this host",
    )
    add_redis_arg(p)
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

    url = redis_url(args, "evaluator")
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


def replay_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="the replay service of a Redis run (transport.replay_service = true) on this host: "
        "keeps the prioritized replay next to Redis, sends the learner sampled batches",
    )
    add_redis_arg(p)
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

    url = redis_url(args, "replay")

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
