"""Whole IMPALA fleets on tiny budgets: train -> checkpoint -> resume -> plot over the local
transport, a kickstarted student (Ape-X and IMPALA teachers), and a run over Redis."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_budget import TINY, TINY_IMPALA

from rlfleet.agents.common.checkpoint import latest_checkpoint, read_state, resolve_checkpoint
from rlfleet.cli.main import main
from rlfleet.cli.policies import load_greedy_policy
from rlfleet.fleet.metrics import read_metrics
from rlfleet.transport.redis import connect


def _sets(overrides: list[str]) -> list[str]:
    return [a for s in overrides for a in ("--set", s)]


def test_train_checkpoint_resume_and_plot(tmp_path):
    run = tmp_path / "run"
    argv = ["train", "impala-cartpole", "--run-dir", str(run), "--quiet"]
    assert main([*argv, *_sets([*TINY_IMPALA, "run.total_env_steps=4000"])]) == 0

    final = json.loads((run / "final_eval.json").read_text())
    assert final["stop_reason"] == "env step budget"
    assert final["env_steps"] >= 4000 and final["updates"] > 0
    assert len(final["final_returns"]) == 3 and final["evaluations"]
    ckpt = latest_checkpoint(run)
    first = read_state(ckpt)["counters"]
    assert first["updates"] == final["updates"] and first["version"] > 1
    # every learner step consumed 2 unrolls of 8 steps x 4 envs
    assert first["env_steps"] >= 64 * first["updates"]
    assert 'algorithm = "impala"' in (run / "config.toml").read_text()
    metrics = read_metrics(run)
    for name in ("learner/entropy", "params/version_lag", "learner/rho_clip_fraction"):
        assert name in metrics, name
    assert "learner/distill_loss" not in metrics

    target = first["updates"] + 20
    resume = ["train", "--resume", str(run), "--quiet", "--set", "run.total_env_steps=0"]
    resume += _sets([f"learner.max_updates={target}", "run.max_seconds=90"])
    assert main(resume) == 0
    resumed = json.loads((run / "final_eval.json").read_text())
    assert resumed["stop_reason"] == "update budget"
    second = read_state(latest_checkpoint(run))["counters"]
    assert second["updates"] >= target and second["env_steps"] > first["env_steps"]
    assert second["elapsed_s"] > first["elapsed_s"]
    steps = [row[1] for row in read_metrics(run)["env/steps_per_s"]]
    assert steps == sorted(steps), "env-step axis must continue after resume"

    assert main(["plot", str(run)]) == 0
    assert (run / "curves.png").stat().st_size > 10_000
    policy = load_greedy_policy(str(run))
    assert policy(np.zeros(4, np.float32)) in (0, 1)


def test_kickstarted_students_of_apex_and_impala_teachers(tmp_path):
    teacher = tmp_path / "apex-teacher"
    argv = ["train", "cartpole", "--run-dir", str(teacher), "--quiet"]
    assert main([*argv, *_sets([*TINY, "run.total_env_steps=1500"])]) == 0

    # the teacher's network (Q, dueling, 32x32) is not the student's (policy-value, 16)
    sets = [*TINY_IMPALA, "model.hidden=[16]", "run.total_env_steps=8000"]
    sets += ["kickstart.schedule=step", "kickstart.boundaries=[4]", "kickstart.values=[0.25]"]
    student = tmp_path / "student"
    argv = ["train", "impala-cartpole", "--run-dir", str(student), "--quiet"]
    assert main([*argv, "--teacher", str(teacher), *_sets(sets)]) == 0
    config = (student / "config.toml").read_text()
    # a teacher given as a run folder is its best-evaluated policy
    assert str(resolve_checkpoint(teacher).resolve()) in config
    metrics = read_metrics(student)
    lambdas = [row[3] for row in metrics["learner/kickstart_lambda"]]
    # each row averages lambda over a report interval (tens of updates): 1 until update 4,
    # then 0.25
    assert all(0.25 <= x <= 1.0 for x in lambdas) and lambdas[-1] < 0.4
    assert all(row[3] > 0 for row in metrics["learner/distill_loss"])

    # an IMPALA teacher, linear decay
    second = tmp_path / "student2"
    sets = [*TINY_IMPALA, "run.total_env_steps=6000", "kickstart.schedule=linear"]
    sets += ["kickstart.decay_updates=5"]
    argv = ["train", "impala-cartpole", "--run-dir", str(second), "--quiet"]
    assert main([*argv, "--teacher", str(student), *_sets(sets)]) == 0
    lambdas = [row[3] for row in read_metrics(second)["learner/kickstart_lambda"]]
    assert all(0.0 <= x <= 1.0 for x in lambdas) and lambdas[-1] < 0.2  # zero after update 5
    final = json.loads((second / "final_eval.json").read_text())
    assert final["updates"] > 5 and final["final_returns"]


def test_teacher_errors_are_clear_and_early(tmp_path, capsys):
    argv = ["train", "cartpole", "--run-dir", str(tmp_path / "x"), "--quiet"]
    assert main([*argv, "--teacher", str(tmp_path)]) == 2
    assert "--teacher kickstarts a student; run.algorithm 'apex' has no [kickstart]" in (
        capsys.readouterr().err
    )
    argv = ["train", "impala-cartpole", "--run-dir", str(tmp_path / "y"), "--quiet"]
    assert main([*argv, "--teacher", str(tmp_path / "nothing")]) == 2
    assert "neither a checkpoint nor a run folder" in capsys.readouterr().err
    assert not (tmp_path / "y").exists(), "nothing starts with a bad teacher"


def test_train_over_redis(tmp_path, redis_server):
    run = tmp_path / "run"
    argv = ["train", "impala-cartpole", "--run-dir", str(run), "--quiet"]
    argv += ["--redis", redis_server.url, "--run", "impala-e2e"]
    assert main([*argv, *_sets([*TINY_IMPALA, "run.total_env_steps=3000"])]) == 0
    final = json.loads((run / "final_eval.json").read_text())
    assert final["transport"] == "redis" and final["redis_run"] == "impala-e2e"
    assert final["stop_reason"] == "env step budget" and final["updates"] > 0
    assert final["final_returns"] and latest_checkpoint(run) is not None
    assert read_state(latest_checkpoint(run))["counters"]["unrolls"] >= 2 * final["updates"]
    assert connect(redis_server.url).keys("*") == []


@pytest.mark.parametrize("transport", ["local", "redis"])
def test_lstm_core_trains_resumes_and_evaluates(tmp_path, transport, request):
    """Unrolls with their core state cross the transport and pass the learner's checks (none
    rejected); the run resumes and its checkpoint plays greedily with memory."""
    run = tmp_path / "run"
    argv = ["train", "impala-cartpole", "--run-dir", str(run), "--quiet"]
    if transport == "redis":
        argv += ["--redis", request.getfixturevalue("redis_server").url, "--run", "lstm-e2e"]
    sets = [*TINY_IMPALA, "model.core=lstm", "model.lstm_size=16", "run.total_env_steps=3000"]
    sets += ["env.id=rlfleet/CartPoleNoVelocity-v1"]
    assert main([*argv, *_sets(sets)]) == 0
    final = json.loads((run / "final_eval.json").read_text())
    assert final["stop_reason"] == "env step budget" and final["updates"] > 0
    assert final["final_returns"] and final["evaluations"]
    counters = read_state(latest_checkpoint(run))["counters"]
    assert counters["unrolls"] >= 2 * final["updates"]
    assert all(row[3] == 0 for row in read_metrics(run)["transport/rejected"])

    if transport == "local":
        resume = ["train", "--resume", str(run), "--quiet"]
        resume += _sets([f"run.total_env_steps={final['env_steps'] + 2000}"])
        assert main(resume) == 0
        second = read_state(latest_checkpoint(run))["counters"]
        assert second["updates"] > counters["updates"]
        policy = load_greedy_policy(str(run))
        policy.reset()
        assert policy(np.zeros(2, np.float32)) in (0, 1)
