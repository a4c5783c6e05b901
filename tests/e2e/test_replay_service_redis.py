"""Ape-X fleets with the replay service on tiny budgets: the service as a local role under
``rlfleet train``, and as ``rlfleet replay`` beside ``rlfleet learner`` + ``rlfleet actor``; a
killed service is restarted and the learner keeps learning."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from typing import Any

from tiny_budget import TINY

from rlfleet.agents.common.checkpoint import latest_checkpoint, read_state
from rlfleet.cli.main import main
from rlfleet.cli.presets import build_config
from rlfleet.fleet.launcher import LocalFleet
from rlfleet.fleet.metrics import read_metrics
from rlfleet.transport.redis import alive_members, connect

SERVICE = "transport.replay_service=true"


def _in_thread(target) -> tuple[threading.Thread, dict[str, Any]]:
    holder: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: holder.setdefault("result", target()), daemon=True)
    thread.start()
    return thread, holder


def _sets(*extra: str) -> list[str]:
    return [a for s in [*TINY, *extra] for a in ("--set", s)]


def test_train_with_a_local_replay_service(tmp_path, redis_server):
    run_dir = tmp_path / "run"
    argv = ["train", "cartpole", "--run-dir", str(run_dir), "--quiet"]
    argv += ["--redis", redis_server.url, "--run", "rs-e2e"]
    argv += _sets("run.total_env_steps=0", "learner.max_updates=400", SERVICE)
    thread, holder = _in_thread(lambda: main(argv))
    client = connect(redis_server.url)
    seen_keys: set[bytes] = set()
    services: set[str] = set()
    while thread.is_alive():
        seen_keys.update(client.keys("*"))
        services.update(alive_members(client, "rs-e2e", "replay"))
        time.sleep(0.2)
    thread.join()
    assert holder["result"] == 0

    assert all(k.startswith(b"rlfleet:rs-e2e:") for k in seen_keys), sorted(seen_keys)
    # (the priorities list is drained within milliseconds: rarely there to be seen)
    for part in (b"samples", b"replay_owner", b"replay", b"experience"):
        assert b"rlfleet:rs-e2e:" + part in seen_keys, part
    assert len(services) == 1, "one service instance, never restarted"
    assert client.keys("*") == [], "the run's keys are deleted at the end"

    final = json.loads((run_dir / "final_eval.json").read_text())
    assert final["stop_reason"] == "update budget" and final["updates"] >= 400
    assert len(final["final_returns"]) == 3
    # the learner's metrics come from the service's counters, carried in the batches
    metrics = read_metrics(run_dir)
    assert max(row[-1] for row in metrics["replay/size"]) >= 200  # replay.learning_starts
    assert max(row[-1] for row in metrics["replay/samples_per_insert"]) > 0
    assert min(row[-1] for row in metrics["learner/wait_fraction"]) < 1.0


def test_replay_command_serves_a_learner_and_actors_on_other_hosts(tmp_path, redis_server):
    run_dir = tmp_path / "run"
    learner_argv = ["learner", "cartpole", "--run-dir", str(run_dir), "--quiet"]
    learner_argv += ["--redis", redis_server.url, "--run", "rs-split"]
    learner_argv += _sets(
        "run.total_env_steps=3000",
        SERVICE,
        "transport.max_queue=8",
        "transport.max_backlog=4",
        "transport.block_timeout_s=2",
    )
    replay_argv = ["replay", "--redis", redis_server.url, "--run", "rs-split", "--quiet"]
    actor_argv = ["actor", "--redis", redis_server.url, "--run", "rs-split", "--actors", "2"]
    replay, replay_out = _in_thread(lambda: main(replay_argv))  # before the learner: waits
    actors, actors_out = _in_thread(lambda: main(actor_argv))
    learner, learner_out = _in_thread(lambda: main(learner_argv))
    learner.join(timeout=240)
    actors.join(timeout=60)
    replay.join(timeout=60)
    assert not learner.is_alive() and not actors.is_alive() and not replay.is_alive()
    assert learner_out["result"] == 0 and actors_out["result"] == 0 and replay_out["result"] == 0

    final = json.loads((run_dir / "final_eval.json").read_text())
    assert final["num_actors"] == 0 and final["stop_reason"] == "env step budget"
    assert final["updates"] > 0 and final["final_returns"]
    assert connect(redis_server.url).keys("*") == []


def test_a_killed_replay_service_is_restarted_and_learning_goes_on(tmp_path, redis_server):
    config = build_config(
        "cartpole",
        [
            *TINY,
            "run.total_env_steps=0",
            "run.max_seconds=35",
            "transport.kind=redis",
            "transport.run=rs-kill",
            SERVICE,
        ],
    )
    fleet = LocalFleet(config, tmp_path / "run", show_progress=False, redis_url=redis_server.url)
    thread, holder = _in_thread(fleet.run)
    deadline = time.monotonic() + 30
    while fleet.result.updates < 50 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert fleet.result.updates >= 50, "the fleet never started learning"
    client = connect(redis_server.url)
    first = alive_members(client, "rs-kill", "replay")
    assert len(first) == 1
    os.kill(fleet.supervisor.get("service").handle.pid, signal.SIGKILL)  # no clean release
    updates_at_kill = fleet.result.updates
    thread.join(timeout=120)
    assert not thread.is_alive()
    result = holder["result"]
    assert result.stop_reason == "time budget"
    assert result.updates > updates_at_kill + 50, "a new service served the learner again"
    assert fleet.supervisor.get("service").incarnation == 1
    assert result.final_returns


def test_dqfd_pretrains_and_learns_through_the_replay_service(tmp_path, redis_server):
    demos = tmp_path / "mc.npz"
    policy = "rlfleet.envs.demonstrators:mountain_car_pump"
    record = ["record", "MountainCar-v0", "--policy", policy, "--episodes", "3"]
    assert main([*record, "--out", str(demos)]) == 0
    run_dir = tmp_path / "run"
    argv = ["train", "mountaincar", "--run-dir", str(run_dir), "--quiet"]
    argv += ["--redis", redis_server.url, "--run", "rs-dqfd"]
    argv += _sets(
        "run.total_env_steps=2000",
        'dqfd.mode="dqfd"',
        f'dqfd.demos="{demos}"',
        "dqfd.pretrain_updates=50",
        SERVICE,
    )
    assert main(argv) == 0
    final = json.loads((run_dir / "final_eval.json").read_text())
    assert final["stop_reason"] == "env step budget" and final["updates"] > 50
    state = read_state(latest_checkpoint(run_dir))
    assert state["counters"]["pretrain_updates"] == 50  # all pre-training batches came through
    metrics = read_metrics(run_dir)
    assert {"learner/j_dq", "learner/j_e"} <= set(metrics)
    # the demonstrations sit in the service's reserved region: counted in the replay size
    assert min(row[-1] for row in metrics["replay/size"] if row[-1]) > 0
    assert connect(redis_server.url).keys("*") == []


def test_redis_crash_and_restart_the_service_reconnects_and_serves_again(tmp_path, redis_server):
    config = build_config(
        "cartpole",
        [
            *TINY,
            "run.total_env_steps=0",
            "run.max_seconds=30",
            "transport.kind=redis",
            "transport.run=rs-crash",
            "transport.max_backlog=8",
            SERVICE,
        ],
    )
    fleet = LocalFleet(config, tmp_path / "run", show_progress=False, redis_url=redis_server.url)
    thread, holder = _in_thread(fleet.run)
    deadline = time.monotonic() + 25
    while fleet.result.updates < 50 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert fleet.result.updates >= 50, "the fleet never started learning"
    redis_server.kill()  # SIGKILL, no persistence: every key (claim, lists, params) is gone
    time.sleep(2.0)
    updates_after_outage = fleet.result.updates
    redis_server.start()
    thread.join(timeout=120)
    assert not thread.is_alive()
    result = holder["result"]
    assert result.stop_reason == "time budget"
    assert result.updates > updates_after_outage + 50, "batches flowed again after the restart"
    assert fleet.supervisor.get("service").incarnation == 0, (
        "the service reconnected, not restarted"
    )
    assert result.final_returns
