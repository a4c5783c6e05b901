"""The command line the side-by-side benchmarks share (``rlfleet bench cartpole``,
``rlfleet bench minatar``: rlfleet against SB3 peers, each run in its own child process)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection, Sequence


def add_train_overrides(parser: argparse.ArgumentParser) -> None:
    """``--set SECTION.KEY=VALUE`` (repeatable, collected in ``overrides``), passed on to every
    ``rlfleet train`` run; :func:`requested_impls` refuses the ones the protocol fixes."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="passed to rlfleet train as --set (repeatable)",
    )


def add_child_arguments(parser: argparse.ArgumentParser, children: Sequence[str]) -> None:
    """The hidden options of a peer's ``--child`` process: ``--child IMPL`` (one of
    ``children``), ``--seed S`` and ``--launch-unix T`` (when its parent launched it)."""
    parser.add_argument("--child", choices=children, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--launch-unix", type=float, default=None, help=argparse.SUPPRESS)


def requested_impls(
    overrides: Sequence[str],
    protocol_keys: Sequence[str],
    impls_arg: str | None,
    valid: Collection[str],
    default: Sequence[str],
) -> list[str] | None:
    """The implementations ``--impls`` asks for (comma-separated; ``default`` without it).

    None, after printing why to stderr, when a ``--set`` override names a setting the protocol
    fixes (``protocol_keys``) or an implementation is not one of ``valid``.
    """
    owned = [o for o in overrides if o.split("=", 1)[0].strip() in protocol_keys]
    if owned:
        print(
            f"--set {owned[0]}: the benchmark protocol fixes {', '.join(protocol_keys)}",
            file=sys.stderr,
        )
        return None
    wanted = [s.strip() for s in impls_arg.split(",")] if impls_arg else list(default)
    unknown = [w for w in wanted if w not in valid]
    if unknown:
        print(f"unknown --impls {unknown}; valid: {', '.join(valid)}", file=sys.stderr)
        return None
    return wanted
