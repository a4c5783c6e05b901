"""The run folder before a fleet starts: refusals with a clear message (a file where the folder
should be, a folder that cannot be written, a finished run reused without ``--resume``, a
checkpoint that would not load), leftovers of an interrupted write removed, and on resume the
metric rows written after the checkpoint dropped, so the resumed curves continue exactly.

Everything here runs in the launcher before any role starts; nothing imports torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rlfleet import atomic
from rlfleet.errors import ConfigError
from rlfleet.fleet.metrics import last_env_steps, truncate_metrics

#: What a run leaves in its folder; any of them means the folder holds a run already.
RUN_FILES = ("final_eval.json", "metrics.csv")


def _existing_run(run_dir: Path) -> str | None:
    """What says ``run_dir`` holds a run (a file name), or None."""
    for name in RUN_FILES:
        file = run_dir / name
        if file.is_file() and file.stat().st_size > 0:
            return name
    checkpoints = run_dir / "checkpoints"
    if checkpoints.is_dir() and any(p.name.startswith("ckpt-") for p in checkpoints.iterdir()):
        return "checkpoints/"
    return None


def check_run_dir(run_dir: str | os.PathLike[str], resuming: bool) -> None:
    """Refuse a run folder this run cannot use, without writing anything: a file of that name,
    or (without ``resuming``) a folder that holds another run."""
    run_dir = Path(run_dir)
    where = f"run folder {str(run_dir)!r}"
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{where} is a file, not a folder; pick another --run-dir")
    if run_dir.is_dir() and not resuming:
        found = _existing_run(run_dir)
        if found is not None:
            raise ConfigError(
                f"{where} already holds a run ({found} is there); continue it with --resume "
                f"{run_dir}, or start a new run with another --run-dir"
            )


def make_run_dir(run_dir: str | os.PathLike[str]) -> bool:
    """Create the run folder if needed and make sure it can be written (a read-only folder or
    file system, a full disk), with a message instead of a traceback; True if it was created
    here (:func:`remove_if_unused` takes it back when the run cannot start after all)."""
    run_dir = Path(run_dir)
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = atomic.temp_sibling(run_dir / "write-test")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        detail = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"cannot write to run folder {str(run_dir)!r}: {detail}; pick another --run-dir (a "
            "folder you can write)"
        ) from None
    return created


def remove_if_unused(run_dir: str | os.PathLike[str]) -> None:
    """Remove a run folder :func:`make_run_dir` created, if it is still empty."""
    try:
        Path(run_dir).rmdir()
    except OSError:
        pass  # not empty, or gone


def clean_run_dir(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Remove what interrupted writes left in the run folder and its ``checkpoints/`` (temporary
    files and folders of writers that are gone); returns what was removed."""
    run_dir = Path(run_dir)
    return atomic.clean_stale(run_dir) + atomic.clean_stale(run_dir / "checkpoints")


def resume_counters(run_dir: str | os.PathLike[str], checkpoint: str, config: Any) -> dict:
    """The counters a run resumes from: the checkpoint's (checked: files, counters, network),
    after dropping the metric rows written after it (``wall_s`` past the checkpoint's
    ``elapsed_s``, on the same run clock), so the resumed rows neither overlap them nor step
    back in time. ``env_steps`` continues the curves' axis: the actors' count in the last kept
    row when it is ahead of the learner's (steps still queued when the checkpoint was taken)."""
    from rlfleet.agents.common.checkpoint import check_resumable

    counters = dict(check_resumable(checkpoint, config)["counters"])
    truncate_metrics(run_dir, float(counters["elapsed_s"]))
    counters["env_steps"] = max(int(counters["env_steps"]), last_env_steps(run_dir))
    return counters
