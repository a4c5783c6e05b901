"""``rlfleet train`` refuses what would lose or corrupt a run, with a message and exit code 2,
before any file is touched: a run folder that is a file, a finished run reused without
--resume, a damaged or mismatched checkpoint given to --resume, and Redis URLs that would have
raised a traceback or printed their password."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rlfleet.agents.common.checkpoint import save_checkpoint
from rlfleet.cli.main import main
from rlfleet.cli.presets import build_config
from rlfleet.config import dumps_toml, to_dict

#: Any run that does start by mistake ends quickly.
QUICK = ["--in-process", "--quiet", "--set", "run.max_seconds=3"]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _run_folder(tmp_path: Path, counters: dict | None = None, **config_sets: str) -> Path:
    """A run folder with config.toml, metrics.csv, final_eval.json and one checkpoint."""
    run = tmp_path / "run"
    config = build_config("cartpole", [f"{k}={v}" for k, v in config_sets.items()])
    run.mkdir()
    (run / "config.toml").write_text(dumps_toml(to_dict(config)))
    (run / "metrics.csv").write_text("wall_s,env_steps,updates,name,value\n1.0,64,1,x,1.0\n")
    (run / "final_eval.json").write_text("{}")
    net = torch.nn.Linear(4, 2)
    state = {
        "counters": counters or {"updates": 5, "env_steps": 64, "elapsed_s": 1.5, "version": 2},
        "config": to_dict(config),
    }
    optimizer = torch.optim.Adam(net.parameters()).state_dict()
    save_checkpoint(
        run, 5, {f"online.{k}": v for k, v in net.state_dict().items()}, optimizer, state
    )
    return run


def _fails(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rlfleet: error: ") and "Traceback" not in err
    return err


def test_a_run_folder_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "run"
    target.write_text("a file")
    err = _fails(["train", "cartpole", "--run-dir", str(target), *QUICK], capsys)
    assert "is a file, not a folder" in err and target.read_text() == "a file"


def test_a_finished_run_is_not_reused_without_resume(tmp_path, capsys):
    run = _run_folder(tmp_path)
    before = _snapshot(run)
    err = _fails(["train", "cartpole", "--run-dir", str(run), *QUICK], capsys)
    assert f"--resume {run}" in err and "another --run-dir" in err
    assert _snapshot(run) == before, "nothing was touched"


@pytest.mark.parametrize(
    "damage, needle",
    [
        (
            lambda c: (c / "model.safetensors").write_bytes(b"\x10" + b"\x00" * 7),
            "model.safetensors",
        ),
        (lambda c: (c / "optimizer.pt").write_bytes(b"PK\x03\x04 cut"), "optimizer.pt"),
        (lambda c: (c / "state.json").write_text("{"), "state.json"),
    ],
)
def test_a_damaged_checkpoint_is_found_before_anything_is_touched(tmp_path, capsys, damage, needle):
    run = _run_folder(tmp_path)
    damage(run / "checkpoints" / "ckpt-0000000005")
    before = _snapshot(run)
    err = _fails(["train", "--resume", str(run), *QUICK], capsys)
    assert str(run / "checkpoints" / "ckpt-0000000005" / needle) in err
    assert _snapshot(run) == before, "config.toml, metrics.csv and the checkpoint untouched"


@pytest.mark.parametrize(
    "counters, needle",
    [
        ({"updates": "5", "env_steps": 64, "elapsed_s": 1.5}, "'updates' is '5'"),
        ({"updates": 5, "elapsed_s": 1.5}, "'env_steps' is None"),
    ],
)
def test_checkpoint_counters_that_are_not_numbers_are_a_message(tmp_path, capsys, counters, needle):
    run = _run_folder(tmp_path, counters=counters)
    err = _fails(["train", "--resume", str(run), *QUICK], capsys)
    assert needle in err and "state.json" in err


def test_a_checkpoint_of_another_network_is_refused_on_resume(tmp_path, capsys):
    run = _run_folder(tmp_path, **{"model.hidden": "[8]"})
    before = _snapshot(run)
    err = _fails(["train", "--resume", str(run), "--set", "model.hidden=[32]", *QUICK], capsys)
    assert "another network or environment" in err and "model" in err
    assert _snapshot(run) == before


@pytest.mark.parametrize(
    "url, needle",
    [
        ("redis://:Sekr1t-pw@localhost:abc/0", "is malformed"),
        ("redis://:Sekr1t-pw@localhost:99999/0", "is malformed"),
        ("redis:/:Sekr1t-pw@localhost", "names no host"),
    ],
)
def test_bad_redis_urls_are_a_message_without_the_password(tmp_path, capsys, url, needle):
    run = tmp_path / "run"
    err = _fails(["train", "cartpole", "--run-dir", str(run), "--redis", url, *QUICK], capsys)
    assert needle in err and "Sekr1t-pw" not in err
    assert not (run / "config.toml").exists()
