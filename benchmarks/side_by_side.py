"""The command line the side-by-side benchmarks share (``rlfleet bench cartpole``,
``rlfleet bench pendulum``, ``rlfleet bench minatar``: rlfleet against SB3 peers, each run in its
own child process): the options, the rows to run (presets and peers), the loop over seeds, and
the parts of the JSON document every one writes."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict
from typing import Any

#: What the skipped-peers line says to install.
INSTALL_PEERS = 'install them with: pip install -e ".[bench]"'


def solve_settings(
    env_id: str, eval_episodes: int, threshold: float, consecutive: int
) -> dict[str, str]:
    """The ``rlfleet train`` settings a time-to-solve protocol owns: the environment as is, stop
    on solving, greedy evaluations of ``eval_episodes`` episodes, solved at ``threshold``
    ``consecutive`` times. Passed on every run (a preset change cannot alter the protocol) and
    refused as ``--set`` overrides (with :func:`protocol_keys`)."""
    return {
        "env.id": env_id,
        "env.max_episode_steps": "0",
        "run.stop_on_solve": "true",
        "eval.episodes": str(eval_episodes),
        "eval.epsilon": "0.0",
        "eval.max_episode_steps": "0",
        "eval.solve_threshold": str(threshold),
        "eval.solve_consecutive": str(consecutive),
    }


def protocol_keys(settings: Mapping[str, str]) -> tuple[str, ...]:
    """The ``--set`` keys a protocol refuses: its settings, the seed and the cap."""
    return (*settings, "run.seed", "run.max_seconds")


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


def add_time_to_solve_arguments(
    parser: argparse.ArgumentParser,
    impls: Sequence[str],
    *,
    default_presets: Sequence[str],
    presets_help: str,
    max_seconds: float,
) -> None:
    """The options of a time-to-solve benchmark: ``--seeds``, ``--json``, ``--impls`` (a subset
    of ``impls``), ``--presets`` (rlfleet rows), ``--max-seconds`` (the cap per run), ``--set``
    and the hidden child options of the peers (``impls[1:]``)."""
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="default: 0 1 2 3 4"
    )
    parser.add_argument("--json", metavar="PATH", help="write every figure and machine info here")
    parser.add_argument(
        "--impls",
        default=None,
        help=f"comma-separated subset of {','.join(impls)} (default: all available)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=max_seconds,
        help=f"cap per run (default {max_seconds:g})",
    )
    parser.add_argument(
        "--presets", nargs="+", default=list(default_presets), metavar="PRESET", help=presets_help
    )
    add_train_overrides(parser)
    add_child_arguments(parser, impls[1:])


def check_presets(presets: list[str]) -> list[str] | None:
    """The presets, de-duplicated, if all exist (else None, after printing the valid ones)."""
    from rlfleet.cli.presets import preset_names

    valid = preset_names()
    unknown = [p for p in presets if p not in valid]
    if unknown:
        print(f"unknown --presets {unknown}; valid: {', '.join(valid)}", file=sys.stderr)
        return None
    return list(dict.fromkeys(presets))


def plan_rows(
    args: argparse.Namespace,
    protocol_keys: Sequence[str],
    impls: Sequence[str],
    row_name: Callable[[str], str],
    peers_available: Callable[[], bool],
) -> tuple[list[str], dict[str, str], list[str], list[str]] | None:
    """``(presets, rows, runnable, skipped)`` for the parsed ``args``, or None after printing
    why (an override the protocol fixes, an unknown implementation or preset).

    ``"rlfleet"`` in ``--impls`` stands for every preset asked for, each a row of its own
    (``rows``: row name -> preset, named by ``row_name``); peers are skipped, with a line
    saying so, when ``peers_available()`` is false."""
    wanted = requested_impls(args.overrides, protocol_keys, args.impls, impls, impls)
    if wanted is None:
        return None
    presets = check_presets(args.presets)
    if presets is None:
        return None
    rows = {row_name(p): p for p in presets}
    wanted = [r for i in wanted for r in (rows if i == "rlfleet" else [i])]
    runnable = [i for i in wanted if i in rows or peers_available()]
    skipped = [i for i in wanted if i not in runnable]
    if skipped:
        print(
            f"peers skipped ({', '.join(skipped)}): stable-baselines3 is not installed; "
            + INSTALL_PEERS
        )
    return presets, rows, runnable, skipped


def run_interleaved(seeds: Sequence[int], impls: Sequence[str], run: Callable[[str, int], Any]):
    """``run(impl, seed)`` for every seed and implementation, implementations interleaved per
    seed so load drift hits all alike; one line per run. The records, in order."""
    records = []
    for seed in seeds:
        for impl in impls:
            rec = run(impl, seed)
            records.append(rec)
            status = f"solved in {rec.time_to_solve_s:.1f} s" if rec.solved else "unsolved"
            extra = f" ({rec.time_excl_eval_s:.1f} s excl. eval)" if rec.eval_s is not None else ""
            print(f"  {impl} seed {seed}: {status}{extra}, {rec.error or rec.stop_reason}")
    return records


def time_to_solve_protocol(protocol: Any, cap_s: float) -> dict[str, Any]:
    """The ``protocol`` entries every time-to-solve benchmark's JSON document shares, from its
    protocol module (``ENV_ID``, ``EVAL_EPISODES``, ``SOLVE_THRESHOLD``, ``SOLVE_CONSECUTIVE``,
    ``SB3_EVAL_EVERY``, ``SB3_TORCH_THREADS``) and the cap per run."""
    return {
        "env": protocol.ENV_ID,
        "eval_episodes": protocol.EVAL_EPISODES,
        "solve_threshold": protocol.SOLVE_THRESHOLD,
        "solve_consecutive": protocol.SOLVE_CONSECUTIVE,
        "time": "wall clock from process launch to the end of the solving evaluation",
        "cap_s": cap_s,
        "unsolved": "counted as the cap",
        "sb3_eval_every_env_steps": dict(protocol.SB3_EVAL_EVERY),
        "sb3_torch_threads": protocol.SB3_TORCH_THREADS,
        "sb3_headline": "time excluding SB3's in-process evaluations (favours SB3)",
    }


def time_to_solve_document(
    name: str,
    protocol: Mapping[str, Any],
    args: argparse.Namespace,
    presets: Sequence[str],
    hyperparameters: Mapping[str, Any],
    skipped: Sequence[str],
    machine: Mapping[str, Any],
    records: Sequence[Any],
    summary: Any,
    ratios: Mapping[str, Any],
) -> dict[str, Any]:
    """The JSON document of a time-to-solve benchmark, keys in their published order; ``ratios``
    are its last entries (``ratios``, ``ratios_by_preset``)."""
    return {
        "benchmark": name,
        "protocol": protocol,
        "presets": list(presets),
        "hyperparameters": hyperparameters,
        "rlfleet_overrides": args.overrides,
        "seeds": args.seeds,
        "skipped": list(skipped),
        "machine": machine,
        "runs": [asdict(r) for r in records],
        "summary": summary,
        **ratios,
    }


def write_json(path: str, payload: Mapping[str, Any], machine: dict[str, Any]) -> None:
    """Write the document (the machine's load at the end recorded first) and say where."""
    machine["load_avg_end"] = os.getloadavg()
    with open(path, "w") as f:
        json.dump(payload, f, indent=1)
    print(f"wrote {path}")
