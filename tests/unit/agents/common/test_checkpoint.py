"""Checkpoints: written atomically (a failed write leaves the previous one and no partial
folder), and checked before a run resumes from them -- damaged files, bad counters and another
network are found without torch, and every error names the file at fault."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rlfleet.agents.common.checkpoint import (
    check_resumable,
    latest_checkpoint,
    save_checkpoint,
)
from rlfleet.cli.presets import build_config
from rlfleet.config import to_dict
from rlfleet.errors import CheckpointError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _save(run_dir: Path, updates: int = 10, config=None, counters=None, replay=None) -> Path:
    net = torch.nn.Linear(4, 2)
    config = config or build_config("cartpole", [])
    state = {
        "counters": counters or {"updates": updates, "env_steps": 640, "elapsed_s": 12.5},
        "config": to_dict(config),
    }
    tensors = {f"online.{k}": v for k, v in net.state_dict().items()}
    opt = torch.optim.Adam(net.parameters())
    return save_checkpoint(run_dir, updates, tensors, opt.state_dict(), state, replay)


def test_a_good_checkpoint_passes_and_returns_its_state(tmp_path):
    folder = _save(tmp_path)
    state = check_resumable(folder, build_config("cartpole", ["run.max_seconds=99"]))
    assert state["counters"]["updates"] == 10


def test_a_failed_write_keeps_the_previous_checkpoint_and_leaves_no_temporary(tmp_path):
    first = _save(tmp_path, 10)

    def full_disk(folder: Path) -> None:
        folder.mkdir()
        (folder / "data.npz").write_bytes(b"x" * 10)
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        _save(tmp_path, 20, replay=full_disk)
    assert latest_checkpoint(tmp_path) == first
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "ckpt-0000000010",
        "latest",
    ]


@pytest.mark.parametrize(
    "damage, file, needle",
    [
        (lambda f: f.write_bytes(f.read_bytes()[:-40]), "model.safetensors", "truncated"),
        (lambda f: f.write_bytes(b"\x00" * 8), "model.safetensors", "not a readable"),
        (lambda f: f.write_bytes(f.read_bytes()[:100]), "optimizer.pt", "damaged"),
        (lambda f: f.write_text("{not json"), "state.json", "unreadable"),
        (lambda f: f.unlink(), "optimizer.pt", "has no optimizer.pt"),
    ],
)
def test_damaged_files_are_found_up_front_naming_the_file(tmp_path, damage, file, needle):
    folder = _save(tmp_path)
    damage(folder / file)
    with pytest.raises(CheckpointError, match=needle) as caught:
        check_resumable(folder, build_config("cartpole", []))
    assert str(folder) in str(caught.value)


@pytest.mark.parametrize(
    "counters, needle",
    [
        ({"updates": "ten", "env_steps": 640, "elapsed_s": 1.0}, "'updates' is 'ten'"),
        ({"updates": 10, "elapsed_s": 1.0}, "'env_steps' is None"),
        ({"updates": 10, "env_steps": 640, "elapsed_s": -1.0}, "'elapsed_s' is -1.0"),
        ({"updates": 10, "env_steps": True, "elapsed_s": 1.0}, "'env_steps' is True"),
    ],
)
def test_counters_that_are_not_numbers_are_refused_naming_state_json(tmp_path, counters, needle):
    folder = _save(tmp_path, counters=counters)
    with pytest.raises(CheckpointError, match=needle) as caught:
        check_resumable(folder)
    assert str(folder / "state.json") in str(caught.value)


def test_a_checkpoint_of_another_network_is_refused_naming_the_keys(tmp_path):
    folder = _save(tmp_path, config=build_config("cartpole", ["model.hidden=[8]"]))
    with pytest.raises(CheckpointError, match=r"model: checkpoint .*'hidden': \[8\]"):
        check_resumable(folder, build_config("cartpole", ["model.hidden=[16]"]))
    state = json.loads((folder / "state.json").read_text())
    state["config"]["env"]["id"] = "MountainCar-v0"
    (folder / "state.json").write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match="env.id: checkpoint 'MountainCar-v0'"):
        check_resumable(folder, build_config("cartpole", ["model.hidden=[8]"]))
