"""``rlfleet bench NAME``: dispatch to the checkout's ``benchmarks/`` folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rlfleet.errors import RlfleetError


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
