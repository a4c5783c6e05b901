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
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlfleet.errors import CheckpointError

if TYPE_CHECKING:
    import torch

LATEST = "latest"


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


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
    tmp = root / f".tmp-{name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_file(
        {k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp / "model.safetensors"
    )
    torch.save(optimizer_state, tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=1))
    if write_replay is not None:
        write_replay(tmp / "replay")
    if final.exists():  # same update count written twice (e.g. final right after periodic)
        shutil.rmtree(final)
    os.rename(tmp, final)
    _atomic_write_text(root / LATEST, name + "\n")
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
    try:
        return json.loads((Path(path) / "state.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint state: {exc}") from exc


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


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a checkpoint folder or a run folder (then its latest checkpoint)."""
    path = Path(path)
    if (path / "model.safetensors").exists():
        return path
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
