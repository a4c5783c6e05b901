"""rlfleet's benchmarks: measured side by side with the tools users would otherwise use.

This folder is not part of the installed package; ``rlfleet bench NAME`` dispatches here from a
source checkout (``pip install -e .``), and ``python -m benchmarks.NAME`` works from the
checkout's root. Child processes get the checkout on ``PYTHONPATH`` (:func:`child_env`).
"""

from __future__ import annotations

import os
from pathlib import Path

#: The source checkout holding this folder.
CHECKOUT = Path(__file__).resolve().parent.parent


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment for a benchmark child: ``benchmarks`` importable from any
    working directory, plus ``extra`` variables."""
    env = dict(os.environ)
    paths = [str(CHECKOUT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.update(extra)
    return env
