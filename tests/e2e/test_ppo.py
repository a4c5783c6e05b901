"""PPO and continuous actions end to end on tiny budgets, over both transports: ppo-cartpole and
ppo-pendulum (synchronous: every iteration trains on exactly the rollouts of its own policy),
impala-pendulum (V-trace on Box actions), observation statistics and domain randomization in
the run, checkpoints that resume and play greedily."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_budget import TINY_IMPALA, TINY_PPO

from rlfleet.agents.common.checkpoint import latest_checkpoint, load_checkpoint, read_state
from rlfleet.cli.main import main
from rlfleet.cli.policies import load_greedy_policy
from rlfleet.fleet.metrics import read_metrics
from rlfleet.transport.redis import connect


def _sets(overrides: list[str]) -> list[str]:
    return [a for s in overrides for a in ("--set", s)]


def _train(preset, run, overrides, transport, request, name):
    argv = ["train", preset, "--run-dir", str(run), "--quiet"]
    if transport == "redis":
        argv += ["--redis", request.getfixturevalue("redis_server").url, "--run", name]
    assert main([*argv, *_sets(overrides)]) == 0
    return json.loads((run / "final_eval.json").read_text())


@pytest.mark.parametrize("transport", ["local", "redis"])
def test_ppo_cartpole_trains_synchronously_and_resumes(tmp_path, transport, request):
    run = tmp_path / "run"
    final = _train(
        "ppo-cartpole", run, [*TINY_PPO, "run.total_env_steps=3000"], transport, request, "ppo-cp"
    )
    assert final["stop_reason"] == "env step budget" and final["updates"] > 0
    assert final["final_returns"] and final["evaluations"]
    counters = read_state(latest_checkpoint(run))["counters"]
    # every iteration trained on exactly B = 2 rollouts of its own policy version
    assert counters["rollouts"] == 2 * final["updates"]
    assert counters["env_steps"] == counters["rollouts"] * 16 * 4
    metrics = read_metrics(run)
    for name in ("ppo/approx_kl", "ppo/clip_fraction", "learner/entropy", "ppo/explained_variance"):
        assert name in metrics, name
    # the learner reproduced the actors' log-probabilities: same policy, same version
    assert max(row[3] for row in metrics["ppo/behaviour_log_prob_gap"]) < 1e-3
    assert all(row[3] == 0 for row in metrics["transport/rejected"])
    if transport == "redis":
        assert connect(request.getfixturevalue("redis_server").url).keys("*") == []
        return
    resume = ["train", "--resume", str(run), "--quiet"]
    resume += _sets([f"run.total_env_steps={final['env_steps'] + 1500}"])
    assert main(resume) == 0
    assert read_state(latest_checkpoint(run))["counters"]["updates"] > counters["updates"]
    assert load_greedy_policy(str(run))(np.zeros(4, np.float32)) in (0, 1)


@pytest.mark.parametrize("transport", ["local", "redis"])
def test_ppo_pendulum_acts_in_a_box_with_normalised_randomized_observations(
    tmp_path, transport, request
):
    run = tmp_path / "run"
    sets = [*TINY_PPO, "run.total_env_steps=3000", "env.normalize_obs=true"]
    sets += ['env.randomize={mass = [0.8, 1.2], length = [0.9, 1.1, "log"]}']
    sets += ["eval.randomize={mass = 1.5}"]
    final = _train("ppo-pendulum", run, sets, transport, request, "ppo-pend")
    assert final["stop_reason"] == "env step budget" and final["updates"] > 0
    assert all(-2000 < r <= 0 for r in final["final_returns"])
    tensors, _, _ = load_checkpoint(latest_checkpoint(run))
    # the observation statistics are in the checkpoint: every trained step was counted
    counters = read_state(latest_checkpoint(run))["counters"]
    assert tensors["online.normalizer.count"].item() == counters["env_steps"]
    policy = load_greedy_policy(str(run))
    action = policy(np.array([1.0, 0.0, 0.0], np.float32))
    assert action.shape == (1,) and -2.0 <= float(action[0]) <= 2.0


@pytest.mark.parametrize("transport", ["local", "redis"])
def test_impala_pendulum_learns_from_behaviour_log_probabilities(tmp_path, transport, request):
    run = tmp_path / "run"
    final = _train(
        "impala-pendulum",
        run,
        [*TINY_IMPALA, "run.total_env_steps=6000"],
        transport,
        request,
        "impala-pend",
    )
    assert final["stop_reason"] == "env step budget" and final["updates"] > 0
    assert final["final_returns"] and final["evaluations"]
    metrics = read_metrics(run)
    assert all(row[3] == 0 for row in metrics["transport/rejected"])
    assert "learner/rho_clip_fraction" in metrics
    action = load_greedy_policy(str(run))(np.array([1.0, 0.0, 0.0], np.float32))
    assert action.shape == (1,) and abs(float(action[0])) <= 2.0


def test_a_box_for_a_discrete_agent_is_refused_before_anything_starts(tmp_path, capsys):
    argv = ["train", "cartpole", "--run-dir", str(tmp_path / "x"), "--quiet"]
    assert main([*argv, "--set", "env.id=Pendulum-v1"]) == 2
    err = capsys.readouterr().err
    assert "Ape-X DQN needs discrete actions; Pendulum-v1 has Box" in err
    assert "impala, ppo" in err
    assert not (tmp_path / "x" / "config.toml").exists(), "nothing started"
