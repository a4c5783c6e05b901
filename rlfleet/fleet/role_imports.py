"""Importing this module imports everything a role process needs: torch, the role shells and
every agent's own modules (:func:`rlfleet.fleet.bootstrap.preload_modules`).

The fleet's forkserver preloads it once, so each forked role starts with those imports done.
It is one module, not the list itself, so that the launcher can start the forkserver
(:func:`rlfleet.fleet.forkserver.start_forkserver`) before it has imported anything of rlfleet's
own: computing the list needs the agent registry, and that import is then the forkserver's,
overlapping the launcher's own start-up instead of preceding the forkserver's.
"""

from __future__ import annotations

import importlib

from rlfleet.fleet.bootstrap import preload_modules

for _name in preload_modules():
    try:
        importlib.import_module(_name)
    except ImportError:  # an optional agent's dependency: its roles import (and report) it
        pass
