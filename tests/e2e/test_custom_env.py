"""The custom-environment example (examples/custom_env) trained end to end through the CLI, run
from the example's folder as a user would: the module is imported by every role."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "custom_env"


def test_cli_trains_the_corridor_example_to_its_threshold(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the module itself comes from the cwd
    cmd = [sys.executable, "-c", "import sys; from rlfleet.cli.main import main; sys.exit(main())"]
    argv = ["train", "corridor.toml", "--run-dir", str(run), "--quiet"]
    argv += ["--set", "run.max_seconds=90", "--set", "actor.num_actors=1"]
    done = subprocess.run(
        [*cmd, *argv], cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    final = json.loads((run / "final_eval.json").read_text())
    assert final["config_env"] == "corridor:Corridor-v0"
    assert final["stop_reason"] == "solved", final["stop_reason"]
    assert final["final_return_mean"] >= 0.9


def test_cli_refuses_an_env_module_that_does_not_import(tmp_path):
    (tmp_path / "badenv.py").write_text("raise ImportError('missing dependency zzz')\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", "import sys; from rlfleet.cli.main import main; sys.exit(main())"]
    run = tmp_path / "run"
    argv = ["train", "--run-dir", str(run), "--quiet", "--set", 'env.id="badenv:Bad-v0"']
    done = subprocess.run(
        [*cmd, *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert (
        "cannot import module 'badenv'" in done.stderr and "missing dependency zzz" in done.stderr
    )
    assert not run.exists()  # nothing written
