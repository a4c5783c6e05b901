"""Ape-X DPG end to end on tiny budgets, over both transports: dpg-pendulum trains (prioritized
replay fed by noisy actors, TD3 updates), nothing is rejected at the message gate, checkpoints
resume (the replay snapshot included) and play greedily inside the Box; over Redis the replay
may live in the replay service."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from tiny_budget import TINY_DPG

from rlfleet.agents.common.checkpoint import latest_checkpoint, read_state
from rlfleet.cli.main import main
from rlfleet.cli.policies import load_greedy_policy
from rlfleet.fleet.metrics import read_metrics
from rlfleet.transport.redis import alive_members, connect


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


def test_dpg_pendulum_trains_on_batches_from_a_local_replay_service(tmp_path, redis_server):
    """`rlfleet train dpg-pendulum` with the replay service as a local role: the actors' Box
    transitions go to the service, the learner trains on the batches it samples, and the run's
    keys are gone afterwards (mirrors the Ape-X replay-service e2e test)."""
    run = tmp_path / "run"
    argv = ["train", "dpg-pendulum", "--run-dir", str(run), "--quiet"]
    argv += ["--redis", redis_server.url, "--run", "dpg-rs"]
    sets = [*TINY_DPG, "run.total_env_steps=0", "learner.max_updates=300"]
    argv += _sets([*sets, "transport.replay_service=true"])
    holder: dict[str, int] = {}
    thread = threading.Thread(target=lambda: holder.setdefault("rc", main(argv)), daemon=True)
    thread.start()
    client = connect(redis_server.url)
    seen_keys: set[bytes] = set()
    services: set[str] = set()
    while thread.is_alive():
        seen_keys.update(client.keys("*"))
        services.update(alive_members(client, "dpg-rs", "replay"))
        time.sleep(0.2)
    thread.join()
    assert holder["rc"] == 0
    for part in (b"samples", b"replay_owner", b"replay", b"experience"):
        assert b"rlfleet:dpg-rs:" + part in seen_keys, part
    assert len(services) == 1, "one service instance, never restarted"
    assert client.keys("*") == [], "the run's keys are deleted at the end"

    final = json.loads((run / "final_eval.json").read_text())
    assert final["stop_reason"] == "update budget" and final["updates"] >= 300
    assert all(-2000 < r <= 0 for r in final["final_returns"])
    # the learner's counters and metrics come from the service's counters, carried in batches
    counters = read_state(latest_checkpoint(run))["counters"]
    assert counters["inserted"] >= 200 and counters["env_steps"] >= counters["inserted"]
    assert counters["sampled"] >= 32 * 300  # every update's batch was sampled by the service
    metrics = read_metrics(run)
    assert max(row[-1] for row in metrics["replay/size"]) >= 200  # replay.learning_starts
    assert max(row[-1] for row in metrics["replay/samples_per_insert"]) > 0
    assert all(row[3] == 0 for row in metrics["transport/rejected"])
    assert "learner/actor_loss" in metrics
