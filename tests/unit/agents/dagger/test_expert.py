"""DAgger's expert: scripted functions (batched or one observation at a time) and checkpoints,
checked before launch without torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from fakes import apex_checkpoint

from rlfleet.agents.dagger.expert import check_expert, load_expert
from rlfleet.envs.spec import probe_env
from rlfleet.errors import ConfigError

CARTPOLE = probe_env("CartPole-v1")
ACROBOT = probe_env("Acrobot-v1")


def single(obs: np.ndarray) -> int:  # a one-observation expert (no batch support)
    return int(obs[2] > 0)


def bad_action(obs: np.ndarray) -> int:
    return 7


def test_a_batched_scripted_expert_is_called_once_per_batch():
    expert = load_expert("rlfleet.envs.demonstrators:cartpole_balance", CARTPOLE)
    obs = np.random.default_rng(0).normal(size=(9, 4)).astype(np.float32)
    assert expert.batched
    want = (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64)
    np.testing.assert_array_equal(expert(obs), want)


def test_a_single_observation_expert_is_called_per_row():
    expert = load_expert(f"{__name__}:single", CARTPOLE)
    obs = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    assert not expert.batched
    np.testing.assert_array_equal(expert(obs), (obs[:, 2] > 0).astype(np.int64))


def test_experts_that_cannot_label_this_environment_are_refused():
    with pytest.raises(ConfigError, match="expected one action in 0..1"):
        check_expert(f"{__name__}:bad_action", CARTPOLE)
    with pytest.raises(ConfigError, match="has no function 'nope'"):
        check_expert("rlfleet.envs.demonstrators:nope", CARTPOLE)
    with pytest.raises(ConfigError, match="neither MODULE:FUNCTION .* nor an existing run"):
        check_expert("no-such-folder-or-function", CARTPOLE)


def test_a_checkpoint_expert_labels_with_its_greedy_policy(tmp_path):
    run = apex_checkpoint(tmp_path / "apex", hidden=(8,))
    pinned = check_expert(str(run), CARTPOLE)
    assert pinned.endswith("ckpt-0000000005")
    expert = load_expert(pinned, CARTPOLE)
    obs = np.random.default_rng(2).normal(size=(6, 4)).astype(np.float32)
    assert expert(obs).shape == (6,) and set(expert(obs)) <= {0, 1}
    with pytest.raises(ConfigError, match=r"has \(6,\) and 3"):
        check_expert(str(run), ACROBOT)
    code = (
        "import sys; from rlfleet.agents.dagger.expert import check_expert; "
        "from rlfleet.envs.spec import probe_env; "
        f"check_expert({str(run)!r}, probe_env('CartPole-v1')); "
        "check_expert('rlfleet.envs.demonstrators:cartpole_balance', probe_env('CartPole-v1')); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
