"""The MuJoCo presets end to end on tiny budgets (the ``mujoco`` extra): Ape-X DPG and PPO on
HalfCheetah-v5, one over each transport (dpg-pendulum and ppo-pendulum cover both), with
randomized physics in training and short episodes so evaluations take a moment. The Hopper
presets differ only in the environment and are built and checked by the preset tests."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_budget import TINY_DPG, TINY_PPO

from rlfleet.cli.main import main
from rlfleet.cli.policies import load_greedy_policy
from rlfleet.fleet.metrics import read_metrics

pytest.importorskip("mujoco")

SHORT = ["env.max_episode_steps=100", "eval.max_episode_steps=100", "run.total_env_steps=2000"]
RANDOMIZE = ['env.randomize={friction = [0.3, 0.5], mass_scale = [0.8, 1.25, "log"]}']


@pytest.mark.parametrize(
    ("preset", "transport", "tiny", "action_dim"),
    [
        ("dpg-halfcheetah", "redis", TINY_DPG, 6),
        ("ppo-halfcheetah", "local", TINY_PPO, 6),
    ],
)
def test_mujoco_presets_train(tmp_path, request, preset, transport, tiny, action_dim):
    run = tmp_path / "run"
    argv = ["train", preset, "--run-dir", str(run), "--quiet"]
    if transport == "redis":
        argv += ["--redis", request.getfixturevalue("redis_server").url, "--run", preset]
    sets = [*tiny, *SHORT, *RANDOMIZE]
    assert main([*argv, *[a for s in sets for a in ("--set", s)]]) == 0
    final = json.loads((run / "final_eval.json").read_text())
    assert final["stop_reason"] == "env step budget" and final["updates"] > 0
    assert final["final_returns"] and final["evaluations"]
    assert all(row[3] == 0 for row in read_metrics(run).get("transport/rejected", []))
    action = load_greedy_policy(str(run))(np.zeros(17))
    assert action.shape == (action_dim,) and (np.abs(action) <= 1.0).all()
