"""The child processes of the side-by-side benchmarks (``rlfleet bench cartpole``, ``rlfleet
bench minatar``): every run is its own process, launched right after its launch time is taken,
waited for up to a timeout (then killed with its whole process group), and read back from what
it printed or wrote."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from benchmarks import child_env


@dataclass
class ChildRun:
    """What one child process did."""

    command: list[str]
    #: ``time.time()`` right before the process was started (the run's clock starts here).
    launch_unix: float
    wall_s: float
    #: None if the process had to be killed after the timeout.
    returncode: int | None
    stdout: str
    stderr: str


def launch_child(
    make_cmd: Callable[[float], list[str]],
    timeout_s: float,
    kill_wait_s: float,
    env_extra: Mapping[str, str] | None = None,
) -> ChildRun:
    """Record the launch time, then start ``make_cmd(launch_unix)`` in its own session (its
    environment: :func:`~benchmarks.child_env` plus ``env_extra``) and wait.

    A process still alive after ``timeout_s`` is sent SIGTERM, then SIGKILL, with its whole
    process group, waiting up to ``kill_wait_s`` after each signal for what it printed.
    """
    launch = time.time()
    cmd = make_cmd(launch)
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=child_env(**dict(env_extra or {})),
    )
    out, err = "", ""
    try:
        out, err = proc.communicate(timeout=timeout_s)
        rc: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        rc = None
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                out, err = proc.communicate(timeout=kill_wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
    return ChildRun(cmd, launch, time.time() - launch, rc, out or "", err or "")


def output_tail(text: str, n: int = 3) -> str:
    """The last ``n`` lines of a child's output on one line (for error messages)."""
    return " | ".join(text.strip().splitlines()[-n:])


def train_command(
    preset: str, run_dir: str, settings: Mapping[str, str], overrides: Sequence[str]
) -> list[str]:
    """``rlfleet train PRESET --quiet --run-dir DIR`` with ``--set`` for every protocol setting,
    then for every user override, in a fresh interpreter."""
    cmd = [sys.executable, "-m", "rlfleet.cli.main", "train", preset, "--quiet"]
    cmd += ["--run-dir", run_dir]
    for ov in [f"{k}={v}" for k, v in settings.items()] + list(overrides):
        cmd += ["--set", ov]
    return cmd
