"""Atomic checkpoints that load without executing code.

A checkpoint is a folder ``checkpoints/ckpt-<updates>/`` holding:

* ``model.safetensors`` — online and target network tensors, torch RNG state;
* ``optimizer.pt`` — the optimizer state dict, read back with ``torch.load(weights_only=True)``;
* ``state.json`` — counters, config digest, numpy RNG states, rate-limiter state;
* ``replay/`` — a replay snapshot, when the run asks for one.

It is written into a temporary sibling folder and renamed into place, then ``checkpoints/latest``
is replaced atomically, so a crash at any point leaves the previous checkpoint intact.

torch and safetensors are imported inside the functions that write or read tensors: the launcher
reads checkpoint state (counters, config) and never imports torch.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlfleet import atomic
from rlfleet.errors import CheckpointError

if TYPE_CHECKING:
    import torch

LATEST = "latest"
#: The folder of a run's best-evaluated parameters (what a run that solved ends with).
BEST = "best"


def save_checkpoint(
    run_dir: str | Path,
    updates: int,
    tensors: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any],
    state: dict[str, Any],
    write_replay: Callable[[Path], None] | None = None,
    keep: int = 2,
) -> Path:
    """Write one checkpoint atomically and prune old ones; returns its folder."""
    import torch
    from safetensors.torch import save_file

    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"ckpt-{updates:010d}"
    final = root / name
    # a temporary folder renamed into place (replacing one of the same update count, e.g. the
    # final checkpoint right after a periodic one); a crash leaves only the temporary folder,
    # removed on the next start (rlfleet.atomic.clean_stale)
    with atomic.folder(final) as tmp:
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in tensors.items()},
            tmp / "model.safetensors",
        )
        torch.save(optimizer_state, tmp / "optimizer.pt")
        (tmp / "state.json").write_text(json.dumps(state, indent=1))
        if write_replay is not None:
            write_replay(tmp / "replay")
    atomic.write_text(root / LATEST, name + "\n")
    _prune(root, keep)
    return final


def _prune(root: Path, keep: int) -> None:
    ckpts = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("ckpt-"))
    for old in ckpts[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of a run, or None if it has none."""
    root = Path(run_dir) / "checkpoints"
    pointer = root / LATEST
    if pointer.exists():
        candidate = root / pointer.read_text().strip()
        if (candidate / "state.json").exists():
            return candidate
    ckpts = sorted(p for p in root.glob("ckpt-*") if (p / "state.json").exists())
    return ckpts[-1] if ckpts else None


def read_state(path: str | Path) -> dict[str, Any]:
    """The JSON state of a checkpoint folder (no torch needed)."""
    file = Path(path) / "state.json"
    try:
        state = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{file}: unreadable checkpoint state: {exc}") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"{file}: checkpoint state is a {type(state).__name__}, not a map")
    return state


#: Counters the launcher reads from a checkpoint it resumes: numbers >= 0.
RESUME_COUNTERS = ("updates", "env_steps", "elapsed_s")
#: Config keys a checkpoint's tensors depend on (a section name alone: the whole section).
SHAPING_KEYS = ("run.algorithm", "env.id", "env.kwargs", "model")
#: Files every resumable checkpoint holds.
CHECKPOINT_FILES = ("model.safetensors", "optimizer.pt", "state.json")
#: Bytes per element of the safetensors dtypes.
_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2}
_DTYPE_BYTES.update({"F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8})
_DTYPE_BYTES["F64"] = 8


def check_safetensors(file: Path) -> None:
    """Check a ``.safetensors`` file's header against its size (a truncated or overwritten file
    is found without loading a tensor, and without torch). Raises :class:`CheckpointError`
    naming the file."""
    try:
        size = file.stat().st_size
        with open(file, "rb") as fh:
            (header_len,) = struct.unpack("<Q", fh.read(8).rjust(8, b"\0"))
            if size < 8 or header_len > size - 8:
                raise CheckpointError(f"{file} is truncated ({size} bytes) or not safetensors")
            header = json.loads(fh.read(header_len))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{file} is not a readable safetensors file: {exc}") from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{file}: the safetensors header is not a map")
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            begin, stop = (int(x) for x in entry["data_offsets"])
            count = math.prod(int(d) for d in entry["shape"])
            width = _DTYPE_BYTES[entry["dtype"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{file}: tensor {name!r} has a bad header entry") from exc
        if stop - begin != count * width or begin < 0:
            raise CheckpointError(f"{file}: tensor {name!r} does not match its declared size")
        end = max(end, stop)
    if 8 + header_len + end != size:
        raise CheckpointError(
            f"{file} holds {size} bytes, its header declares {8 + header_len + end}: truncated "
            "or damaged"
        )


def _check_zip(file: Path) -> None:
    """``torch.save`` writes a zip archive: check every member's CRC (no torch needed)."""
    try:
        with zipfile.ZipFile(file) as archive:
            bad = archive.testzip()
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise CheckpointError(f"{file} is truncated or damaged: {exc}") from exc
    if bad is not None:
        raise CheckpointError(f"{file} is damaged: member {bad!r} fails its checksum")


def _dig(tree: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        tree = tree.get(part) if isinstance(tree, dict) else None
    return tree


def check_resumable(path: str | Path, config: Any = None) -> dict[str, Any]:
    """Read and check a checkpoint folder before a run resumes from it (no torch, nothing
    written): its files are complete and undamaged, its counters are numbers, and -- given the
    run's ``config`` -- it was saved by a run whose network is the same (the keys of
    :data:`SHAPING_KEYS`). Returns its JSON state; raises :class:`CheckpointError` naming the
    file at fault and what to do."""
    folder = Path(path)
    advice = "resume from another checkpoint folder, or start a new run with another --run-dir"
    for name in CHECKPOINT_FILES:
        if not (folder / name).is_file():
            raise CheckpointError(f"checkpoint {folder} has no {name}: incomplete; {advice}")
    state = read_state(folder)
    counters = state.get("counters")
    if not isinstance(counters, dict):
        raise CheckpointError(f"{folder / 'state.json'} has no counters; {advice}")
    for name in RESUME_COUNTERS:
        value = counters.get(name)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or value < 0:
            raise CheckpointError(
                f"{folder / 'state.json'}: counter {name!r} is {value!r}, not a number >= 0; "
                f"{advice}"
            )
    check_safetensors(folder / "model.safetensors")
    _check_zip(folder / "optimizer.pt")
    if config is not None:
        from rlfleet.config import to_dict

        # compared as JSON: tuples in the config are lists in state.json
        saved, now = state.get("config"), json.loads(json.dumps(to_dict(config)))
        differ = [k for k in SHAPING_KEYS if _dig(saved, k) != _dig(now, k)]
        if differ:
            shown = "; ".join(
                f"{k}: checkpoint {_dig(saved, k)!r}, run {_dig(now, k)!r}" for k in differ
            )
            raise CheckpointError(
                f"{folder / 'state.json'} was saved by a run with another network or "
                f"environment ({shown}); resume with the run's own config (drop those --set "
                "overrides) or start a new run"
            )
    return state


def load_checkpoint(
    path: str | Path,
) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """Tensors, optimizer state and JSON state of a checkpoint folder (no code executed)."""
    import torch
    from safetensors.torch import load_file

    path = Path(path)
    if not (path / "model.safetensors").exists():
        raise CheckpointError(f"{path} is not a checkpoint folder (no model.safetensors)")
    tensors = load_file(path / "model.safetensors")
    optimizer_state = torch.load(path / "optimizer.pt", weights_only=True)
    return tensors, optimizer_state, read_state(path)


def save_policy(
    run_dir: str | Path, tensors: dict[str, torch.Tensor], state: dict[str, Any]
) -> Path:
    """Write ``checkpoints/best/``: the best-evaluated parameters of a run (``online.*`` tensors
    and a ``state.json`` with the config, version and evaluation), replacing the previous best
    atomically (temp folder + rename). A policy, not a resumable checkpoint: no optimizer."""
    from safetensors.torch import save_file

    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{BEST}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_file(
        {k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp / "model.safetensors"
    )
    (tmp / "state.json").write_text(json.dumps(state, indent=1))
    final = root / BEST
    old = root / f".old-{BEST}-{os.getpid()}"
    if final.exists():
        os.rename(final, old)  # rename twice: a crash leaves either the old best or the new
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def load_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and JSON state of a checkpoint or policy folder (no optimizer, no code run)."""
    from safetensors.torch import load_file

    path = Path(path)
    if not (path / "model.safetensors").exists():
        raise CheckpointError(f"{path} is not a checkpoint folder (no model.safetensors)")
    return load_file(path / "model.safetensors"), read_state(path)


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a checkpoint folder or a run folder: then its best-evaluated policy
    (``checkpoints/best``, what the run reached) if it has one, else its latest checkpoint.
    Resuming uses :func:`latest_checkpoint` instead."""
    path = Path(path)
    if (path / "model.safetensors").exists():
        return path
    best = path / "checkpoints" / BEST
    if (best / "model.safetensors").exists() and (best / "state.json").exists():
        return best
    found = latest_checkpoint(path)
    if found is None:
        raise CheckpointError(f"{path} is neither a checkpoint nor a run folder with checkpoints")
    return found


def check_policy_checkpoint(path: str | Path, env: Any, what: str) -> tuple[Path, Any]:
    """The checkpoint folder of ``path`` (absolute) and the config saved in it, after checking
    that its policy acts on ``env``'s observations and actions (a kickstarting teacher, a DAgger
    expert). Reads only ``state.json``: no torch. ``what`` names the role in errors."""
    from rlfleet.agents import registry
    from rlfleet.envs.spec import probe_env
    from rlfleet.errors import ConfigError

    folder = resolve_checkpoint(Path(path)).resolve()
    state = read_state(folder)
    if "config" not in state:
        raise CheckpointError(f"{folder}: state.json has no config to rebuild the {what} from")
    config = registry.config_from_dict(state["config"])
    own = probe_env(config.env.id, config.env.kwargs)
    if own.obs_shape != env.obs_shape or own.num_actions != env.num_actions:
        raise ConfigError(
            f"{what} {folder} ({config.env.id}) sees observations of shape {own.obs_shape} and "
            f"has {own.num_actions} actions; the run's environment has {env.obs_shape} and "
            f"{env.num_actions}"
        )
    return folder, config
