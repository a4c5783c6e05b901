"""``rlfleet record``: write demonstration episodes from a policy to a demonstration file.

    rlfleet record ENV_ID --policy MODULE:FUNCTION --episodes N --out FILE.npz [--seed S]
    rlfleet record ENV_ID --checkpoint RUN_OR_CHECKPOINT --episodes N --out FILE.npz

The file format is documented in docs/demonstrations.md; ``rlfleet train`` with ``dqfd.demos``
loads it and checks it against the run's environment.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "record", help="record demonstration episodes from a scripted policy or a checkpoint"
    )
    p.add_argument("env_id", help="environment id, e.g. MountainCar-v0")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--policy",
        metavar="MODULE:FUNCTION",
        help="a function observation -> action, e.g. rlfleet.envs.demonstrators:mountain_car_pump",
    )
    source.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="a run folder or checkpoint folder: its greedy policy demonstrates",
    )
    p.add_argument("--episodes", type=int, default=20, help="episodes to record (20)")
    p.add_argument("--seed", type=int, default=0, help="episode i resets with seed + i (0)")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="demonstration file to write")
    p.add_argument(
        "--max-episode-steps", type=int, default=None, help="time limit override per episode"
    )


def import_policy(spec: str) -> Callable[[np.ndarray], int]:
    """``module:function`` -> the function; errors name what is missing."""
    from rlfleet.envs.demonstrators import import_policy as find

    return find(spec, "--policy")


def run(args: argparse.Namespace) -> int:
    from rlfleet.envs.record import record_episodes

    if args.policy:
        policy, source = import_policy(args.policy), f"script:{args.policy}"
    else:
        from pathlib import Path

        from rlfleet.agents.common.checkpoint import resolve_checkpoint
        from rlfleet.cli.policies import load_greedy_policy

        folder = resolve_checkpoint(Path(args.checkpoint))
        policy, source = load_greedy_policy(str(folder)), f"checkpoint:{folder}"
    demos = record_episodes(
        args.env_id,
        policy,
        args.episodes,
        args.seed,
        path=args.out,
        source=source,
        max_episode_steps=args.max_episode_steps,
    )
    returns = demos.episode_returns
    print(
        f"wrote {args.out}: {demos.num_episodes} episodes, {demos.num_steps:,} steps of "
        f"{args.env_id}; return mean {returns.mean():.1f} (min {returns.min():.1f}, "
        f"max {returns.max():.1f}); source {source}"
    )
    return 0
