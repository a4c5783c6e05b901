"""Demonstration files on disk: the atomic writer and the validating loader (the format is in
:mod:`.format`). Nothing read can run code: ``allow_pickle=False`` throughout."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlfleet.errors import ConfigError, ReplayError
from rlfleet.replay.demos.format import (
    ARRAY_KEYS,
    DEMO_FORMAT,
    DEMO_FORMAT_VERSION,
    Demonstrations,
)


def write_demos(path: str | os.PathLike[str], demos: Demonstrations) -> Path:
    """Write ``demos`` to ``path`` (a ``.npz``) atomically; returns the path written.

    The archive is written to a temporary file in the same directory, fsynced, then moved over
    ``path`` with ``os.replace``: a reader sees the old file or the complete new one, and a failed
    write (full disk, exception, kill) leaves no partial file at ``path``.

    Raises:
        ReplayError: ``demos`` is malformed (nothing is written then).
    """
    demos.check()
    path = Path(path)
    if path.suffix != ".npz":
        raise ReplayError(f"demonstration files end in .npz, got {str(path)!r}")
    meta_bytes = json.dumps(demos.meta, allow_nan=False, sort_keys=True).encode("utf-8")
    arrays = {
        "obs": demos.obs,
        "action": demos.action,
        "reward": demos.reward,
        "terminated": demos.terminated,
        "truncated": demos.truncated,
        "episode_id": demos.episode_id,
        "final_obs": demos.final_obs,
        "meta": np.frombuffer(meta_bytes, dtype=np.uint8),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        # Also on KeyboardInterrupt: never leave the temp file behind.
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_demos(
    path: str | os.PathLike[str],
    expect_env_id: str | None = None,
    expect_obs_shape: Sequence[int] | None = None,
    expect_obs_dtype: np.dtype | type | str | None = None,
    expect_num_actions: int | None = None,
) -> Demonstrations:
    """Read and validate a demonstration file; optionally check it against an environment.

    Raises:
        ReplayError: missing/unreadable file, object arrays (pickle is never allowed), missing
            arrays, bad metadata, unknown format or a newer format version, or inconsistent
            arrays -- each message names the file and what is wrong.
        ConfigError: the file is well-formed but does not match the expectations; the message
            lists every differing field as ``field: expected X, found Y``.
    """
    path = Path(path)
    if not path.is_file():
        raise ReplayError(f"demonstration file {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in ARRAY_KEYS if k not in npz.files]
            if missing:
                raise ReplayError(
                    f"{str(path)!r} is not a demonstration file: arrays {missing} are missing "
                    f"(found {sorted(npz.files)}; required {list(ARRAY_KEYS)})"
                )
            arrays = {k: npz[k] for k in ARRAY_KEYS}
    except ReplayError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        # ValueError is also what np.load raises for an object (pickled) array.
        raise ReplayError(f"cannot read demonstration file {str(path)!r}: {exc}") from exc
    meta = _parse_meta(path, arrays.pop("meta"))
    demos = Demonstrations(meta=meta, **arrays)
    demos.check(where=f"demonstrations in {str(path)!r}")
    diffs = demos.mismatches(expect_env_id, expect_obs_shape, expect_obs_dtype, expect_num_actions)
    if diffs:
        raise ConfigError(
            f"demonstrations in {str(path)!r} do not match the environment: " + "; ".join(diffs)
        )
    return demos


def _parse_meta(path: Path, raw: np.ndarray) -> dict[str, Any]:
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ReplayError(
            f"{str(path)!r}: meta must be a 1-D uint8 array of UTF-8 JSON, got {raw.dtype} "
            f"shape {raw.shape}"
        )
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReplayError(f"{str(path)!r}: meta is not UTF-8 JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise ReplayError(f"{str(path)!r}: meta must be a JSON object, got {type(meta).__name__}")
    if meta.get("format") != DEMO_FORMAT:
        raise ReplayError(
            f"{str(path)!r}: format is {meta.get('format')!r}, expected {DEMO_FORMAT!r}"
        )
    version = meta.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= DEMO_FORMAT_VERSION:
        raise ReplayError(
            f"{str(path)!r}: format_version {version!r} is not supported; valid: "
            f"1..{DEMO_FORMAT_VERSION}"
        )
    return meta
