"""The fleet's forkserver starts before the launcher imports anything of rlfleet's, and what
it preloads is every module the roles need."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_forkserver_module_imports_nothing_heavy() -> None:
    out = _run(
        "import sys, rlfleet.fleet.forkserver\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('rlfleet', 'torch', 'numpy', 'gymnasium'))))"
    )
    assert out.returncode == 0, out.stderr
    # the package roots and the error types only: the registry, numpy and torch are the
    # forkserver's to import
    assert set(out.stdout.split()) <= {
        "rlfleet",
        "rlfleet.errors",
        "rlfleet.fleet",
        "rlfleet.fleet.forkserver",
    }


def test_role_imports_loads_every_preload_module() -> None:
    out = _run(
        "import sys, rlfleet.fleet.role_imports\n"
        "from rlfleet.fleet.bootstrap import preload_modules\n"
        "print([m for m in preload_modules() if m not in sys.modules])"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_train_starts_the_forkserver_before_importing_the_launcher() -> None:
    # the stand-in records what was imported when the forkserver would start, then exits
    out = _run(
        "import sys\n"
        "import rlfleet.fleet.forkserver as fs\n"
        "def record():\n"
        "    print(sorted(m for m in ('rlfleet.api.training', 'rlfleet.fleet.launcher', "
        "'rlfleet.agents.registry', 'torch') if m in sys.modules))\n"
        "    raise SystemExit(0)\n"
        "fs.start_forkserver = record\n"
        "from rlfleet.cli.main import main\n"
        "main(['train', 'cartpole', '--quiet'])\n"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_in_process_runs_start_no_forkserver() -> None:
    out = _run(
        "import rlfleet.fleet.forkserver as fs\n"
        "def record():\n"
        "    raise SystemExit(3)\n"
        "fs.start_forkserver = record\n"
        "from rlfleet.cli.main import main\n"
        "main(['train', 'no-such-preset', '--in-process'])\n"
    )
    assert out.returncode != 3, "an --in-process run started the forkserver"
    assert "no-such-preset" in out.stderr + out.stdout
