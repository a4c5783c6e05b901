"""Kickstarting teachers: any run's checkpoint as softmax(scores / temperature), checked against
the student's environment before any process starts; an IMPALA checkpoint as a greedy policy."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from fakes import FakeSink, apex_checkpoint

from rlfleet.agents.common.learner import LearnerShell
from rlfleet.agents.common.networks import load_network
from rlfleet.agents.impala.learner import ImpalaLearner
from rlfleet.agents.impala.teacher import check_teacher, load_teacher
from rlfleet.cli.policies import load_greedy_policy
from rlfleet.cli.presets import build_config
from rlfleet.envs.spec import probe_env
from rlfleet.errors import CheckpointError, ConfigError

CARTPOLE = probe_env("CartPole-v1")
ACROBOT = probe_env("Acrobot-v1")  # observations (6,), three actions

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def impala_checkpoint(run_dir, *overrides: str):
    config = build_config("impala-cartpole", ["model.hidden=[12, 12]", *overrides])
    learner = ImpalaLearner(config, CARTPOLE, seed=0)
    path = LearnerShell(learner, config, run_dir, FakeSink(), None, None).save()
    return learner, path


def test_apex_teacher_is_softmax_of_q_over_temperature(tmp_path):
    run = apex_checkpoint(tmp_path / "apex", hidden=(8, 8))  # not the student's architecture
    loaded = load_network(run)
    teacher = load_teacher(run, 0.5, CARTPOLE)
    obs = torch.randn(7, 4)
    with torch.no_grad():
        torch.testing.assert_close(teacher(obs), loaded.net(obs) / 0.5)
    assert not any(p.requires_grad for p in teacher.parameters())
    with pytest.raises(ConfigError, match=r"has \(6,\) and 3"):
        load_teacher(run, 1.0, ACROBOT)


def test_impala_checkpoint_gives_a_greedy_policy_from_its_logits(tmp_path):
    learner, path = impala_checkpoint(tmp_path)
    policy = load_greedy_policy(str(tmp_path))
    teacher = load_teacher(path, 1.0, CARTPOLE)
    obs = np.array([0.01, -0.2, 0.03, 0.3], np.float32)
    with torch.no_grad():
        logits, _ = learner.update.net(torch.from_numpy(obs[None]))
        torch.testing.assert_close(teacher(torch.from_numpy(obs[None])), logits)
    assert policy(obs) == int(logits.argmax())


def test_the_launcher_checks_a_teacher_without_torch(tmp_path):
    """check_teacher pins the folder and compares environments from the saved config only."""
    _, path = impala_checkpoint(tmp_path / "run")
    assert check_teacher(tmp_path / "run", CARTPOLE) == path.resolve()
    with pytest.raises(ConfigError, match=r"has \(6,\) and 3"):
        check_teacher(path, ACROBOT)
    with pytest.raises(CheckpointError, match="neither a checkpoint nor a run folder"):
        check_teacher(tmp_path / "nothing-here", CARTPOLE)
    _, lstm = impala_checkpoint(tmp_path / "lstm", 'model.core="lstm"', "model.lstm_size=8")
    with pytest.raises(ConfigError, match="has an LSTM core .* Use a feed-forward teacher"):
        check_teacher(lstm, CARTPOLE)
    code = (
        "import sys; from rlfleet.agents.impala.teacher import check_teacher; "
        "from rlfleet.envs.spec import probe_env; "
        f"check_teacher({str(path)!r}, probe_env('CartPole-v1')); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
