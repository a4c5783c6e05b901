"""Ape-X DPG end to end on tiny budgets, over both transports: dpg-pendulum trains (prioritized
replay fed by noisy actors, TD3 updates), nothing is rejected at the message gate, checkpoints
resume (the replay snapshot included) and play greedily inside the Box."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_budget import TINY_DPG

from rlfleet.agents.common.checkpoint import latest_checkpoint, read_state
from rlfleet.cli.main import main
from rlfleet.cli.policies import load_greedy_policy
from rlfleet.fleet.metrics import read_metrics
from rlfleet.transport.redis import connect


def _sets(overrides: list[str]) -> list[str]:
    return [a for s in overrides for a in ("--set", s)]


@pytest.mark.parametrize("transport", ["local", "redis"])
def test_dpg_pendulum_trains_and_resumes(tmp_path, transport, request):
    run = tmp_path / "run"
    argv = ["train", "dpg-pendulum", "--run-dir", str(run), "--quiet"]
    if transport == "redis":
        argv += ["--redis", request.getfixturevalue("redis_server").url, "--run", "dpg-pend"]
    sets = [*TINY_DPG, "run.total_env_steps=5000", "run.snapshot_replay=true"]
    assert main([*argv, *_sets(sets)]) == 0
    final = json.loads((run / "final_eval.json").read_text())
    assert final["stop_reason"] == "env step budget" and final["updates"] > 0
    assert all(-2000 < r <= 0 for r in final["final_returns"])
    metrics = read_metrics(run)
    assert all(row[3] == 0 for row in metrics["transport/rejected"])
    assert "learner/actor_loss" in metrics and "learner/q_mean" in metrics
    counters = read_state(latest_checkpoint(run))["counters"]
    assert counters["inserted"] > 200 and counters["sampled"] > 0
    action = load_greedy_policy(str(run))(np.array([1.0, 0.0, 0.0], np.float32))
    assert action.shape == (1,) and -2.0 <= float(action[0]) <= 2.0
    if transport == "redis":
        assert connect(request.getfixturevalue("redis_server").url).keys("*") == []
        return
    resume = ["train", "--resume", str(run), "--quiet"]
    resume += _sets([f"run.total_env_steps={final['env_steps'] + 2000}"])
    assert main(resume) == 0
    after = read_state(latest_checkpoint(run))["counters"]
    assert after["updates"] > counters["updates"] and after["inserted"] > counters["inserted"]
