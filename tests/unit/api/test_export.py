"""rlfleet export: ONNX and TorchScript files that reproduce the run's policy (observation
normalisation included), checked before they appear; nothing written on any failure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rlfleet.agents import registry
from rlfleet.agents.common.checkpoint import save_checkpoint
from rlfleet.api.export import ExportError, export_policy, sample_observations
from rlfleet.api.policy import load_policy
from rlfleet.cli.main import main
from rlfleet.cli.presets import build_config
from rlfleet.config import to_dict
from rlfleet.envs.spec import probe_env
from rlfleet.errors import CheckpointError, ConfigError
from rlfleet.models.normalize import find_obs_normalizer

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_torch_thread")]


def _run(tmp_path: Path, preset: str, overrides: list[str]) -> Path:
    """A run folder with one checkpoint of a freshly initialised network (normaliser set to
    non-trivial statistics when the config has one)."""
    config = build_config(preset, overrides)
    env = probe_env(config.env.id, config.env.kwargs)
    torch.manual_seed(0)
    net = registry.spec_of(config).make_network(config, env)
    normalizer = find_obs_normalizer(net)
    if normalizer is not None:
        with torch.no_grad():
            normalizer.shift.copy_(torch.linspace(-0.5, 0.5, normalizer.shift.numel()))
            normalizer.scale.copy_(torch.linspace(0.2, 3.0, normalizer.scale.numel()))
    run = tmp_path / "run"
    run.mkdir()
    state = {
        "counters": {"updates": 1, "env_steps": 1, "elapsed_s": 1.0},
        "config": to_dict(config),
    }
    tensors = {f"online.{k}": v for k, v in net.state_dict().items()}
    save_checkpoint(run, 1, tensors, {}, state)
    return run


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_discrete_export_reproduces_the_policy(tmp_path, fmt):
    run = _run(tmp_path, "cartpole", ["env.normalize_obs=true"])
    out = tmp_path / f"policy.{fmt}"
    report = export_policy(run, fmt, out, check_observations=300)
    assert out.is_file() and report.observations == 300
    assert report.actions_equal + report.near_ties == 300
    policy = load_policy(run)
    obs = sample_observations(policy, 200, seed=9)
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        actions, scores = session.run(None, {"obs": obs})
    else:
        with torch.no_grad():
            outputs = torch.jit.load(str(out))(torch.from_numpy(obs))
        actions, scores = (t.numpy() for t in outputs)
    np.testing.assert_array_equal(actions, policy(obs))
    with torch.no_grad():  # raw observations in: the normaliser is inside the graph
        want = policy.net(torch.from_numpy(obs))
    np.testing.assert_allclose(scores, want.numpy(), atol=1e-5)
    assert not list(tmp_path.glob(".*tmp*"))


def test_box_export_with_a_squashed_gaussian(tmp_path):
    run = _run(tmp_path, "ppo-pendulum", ["env.normalize_obs=true"])
    out = tmp_path / "policy.onnx"
    report = export_policy(run, "onnx", out, check_observations=200)
    assert report.max_action_diff < 1e-4
    import onnxruntime as ort

    policy = load_policy(run)
    obs = sample_observations(policy, 64, seed=4)
    actions, _ = ort.InferenceSession(str(out)).run(None, {"obs": obs})
    assert actions.shape == (64, 1)
    np.testing.assert_allclose(actions, policy(obs), atol=1e-5)
    low, high = policy.action_space.low, policy.action_space.high
    assert (actions >= low).all() and (actions <= high).all()


def test_a_mismatch_writes_nothing(tmp_path, monkeypatch):
    import rlfleet.api.export as export

    run = _run(tmp_path, "cartpole", [])
    real = export.acting_module

    def flipped(policy):
        module = real(policy)

        class Flip(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = module

            def forward(self, obs):
                action, scores = self.inner(obs)
                return 1 - action, scores

        return Flip().eval()

    monkeypatch.setattr(export, "acting_module", flipped)
    out = tmp_path / "policy.onnx"
    with pytest.raises(ExportError, match="does not match the run's policy.*nothing written"):
        export_policy(run, "onnx", out, check_observations=64)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_bad_input_is_refused_before_anything_is_written(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "p.onnx"
    with pytest.raises(CheckpointError, match="cannot export"):
        export_policy(empty, "onnx", out)
    with pytest.raises(ConfigError, match="valid: onnx, torchscript"):
        export_policy(empty, "tflite", out)
    with pytest.raises(ConfigError, match="does not exist"):
        export_policy(empty, "onnx", tmp_path / "nowhere" / "p.onnx")
    assert main(["export", str(empty), "--format", "onnx", "--out", str(out)]) == 2
    assert "cannot export" in capsys.readouterr().err
    run = _run(tmp_path, "impala-cartpole-lstm", [])
    with pytest.raises(ConfigError, match="LSTM core"):
        export_policy(run, "onnx", out)
    assert not out.exists()
