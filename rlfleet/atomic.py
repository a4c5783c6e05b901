"""Atomic writes of files and folders, and the cleanup of what an interrupted write left behind.

Every file or folder a run leaves that a reader may look at while it changes (checkpoints,
``checkpoints/latest``, ``final_eval.json``, ``evaluations.json``, a rewritten ``metrics.csv``) is
written under a temporary sibling name and renamed into place: a reader sees the old version or
the complete new one, never half of one. A crash, a kill or a full disk between the two steps
leaves only the temporary name behind, which :func:`clean_stale` removes on the next start.

Temporary names are ``.tmp-<pid>-<random>-<final name>``: the writer's process id tells a
leftover (its writer is gone) from a write under way in a live process. Names of older rlfleet
versions (``.tmp-ckpt-...``, ``.final_eval.json.tmp``, ``.latest.tmp-<pid>``) are cleaned too.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Every temporary name starts with this.
TEMP_PREFIX = ".tmp-"
_OURS = re.compile(r"\.tmp-(\d+)-[0-9a-f]+-.+")
#: Temporary names written by older versions: ``.tmp-<name>-<pid>`` folders, ``.<name>.tmp``
#: and ``.<name>.tmp-<pid>`` files.
_LEGACY = re.compile(r"\.tmp-.+|\..+\.tmp(-\d+)?")


def temp_sibling(final: str | os.PathLike[str]) -> Path:
    """A fresh temporary name next to ``final`` (same folder, so the rename is atomic)."""
    final = Path(final)
    return final.with_name(f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{final.name}")


def write_bytes(path: str | os.PathLike[str], data: bytes, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (temporary sibling, then ``os.replace``).

    ``fsync``: flush the data to disk before the rename (survives a power loss, not only a
    crash of this process)."""
    path = Path(path)
    tmp = temp_sibling(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk or Ctrl-C: leave nothing half-written
        raise


def write_text(path: str | os.PathLike[str], text: str, fsync: bool = False) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"), fsync)


@contextmanager
def folder(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Fill a temporary folder, then rename it to ``final`` (replacing an existing one).

    ``with atomic.folder(root / "ckpt-10") as tmp: ...write into tmp...``. On an exception the
    temporary folder is removed and ``final`` is left as it was. Replacing an existing ``final``
    removes it first: a crash between the removal and the rename loses that one folder, never
    leaves a half-written one under the final name.
    """
    final = Path(final)
    tmp = temp_sibling(final)
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def is_temp(name: str) -> bool:
    """Whether ``name`` is a temporary name of this module (or of an older rlfleet)."""
    return bool(_OURS.fullmatch(name) or _LEGACY.fullmatch(name))


def clean_stale(folder_path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files and folders in ``folder_path`` whose writer is gone (a crash,
    a kill, a full disk); returns what was removed. Writes under way in live processes are left
    alone. A missing folder has nothing to clean."""
    root = Path(folder_path)
    if not root.is_dir():
        return []
    removed = []
    for entry in root.iterdir():
        ours = _OURS.fullmatch(entry.name)
        if ours is None and not _LEGACY.fullmatch(entry.name):
            continue
        if ours is not None and _alive(int(ours.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed
