"""The fleet's forkserver, started as early as a command knows it will launch role processes.

Every local role process is forked from one forkserver that has imported
:mod:`rlfleet.fleet.role_imports` (torch and the roles' modules: about 1.5 s). Those imports are
the longest part of a run's start-up, so the command line starts the forkserver before it
imports anything else of rlfleet's (this module imports only the standard library), and the
launcher's own imports, config checks and run folder overlap the forkserver's.
"""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing import forkserver
from multiprocessing.context import ForkServerContext

#: The one module the forkserver preloads.
ROLE_IMPORTS = "rlfleet.fleet.role_imports"


def forkserver_context() -> ForkServerContext:
    """The forkserver context, set to preload :data:`ROLE_IMPORTS`."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([ROLE_IMPORTS])
    return ctx


def start_forkserver() -> None:
    """Start the forkserver now (a no-op when it is already running). Returns at once: the
    forkserver imports in the background and the first fork waits for it."""
    forkserver_context()
    forkserver.ensure_running()
