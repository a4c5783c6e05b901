"""Whole Ape-X fleets over Redis on tiny budgets: the data plane (experience, parameters,
heartbeats) through a real redis-server, every key under the run's prefix, and a server crash
and restart in the middle of a run."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from tiny_budget import TINY

from rlfleet.agents.common.checkpoint import latest_checkpoint
from rlfleet.cli.main import main
from rlfleet.cli.presets import build_config
from rlfleet.fleet.launcher import LocalFleet
from rlfleet.fleet.metrics import read_metrics
from rlfleet.transport.redis import alive_actors, connect


def _in_thread(target) -> tuple[threading.Thread, dict[str, Any]]:
    holder: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: holder.setdefault("result", target()), daemon=True)
    thread.start()
    return thread, holder


def test_train_over_redis_uses_only_the_run_prefix_and_cleans_up(tmp_path, redis_server):
    run_dir = tmp_path / "run"
    argv = ["train", "cartpole", "--run-dir", str(run_dir), "--quiet"]
    argv += ["--redis", redis_server.url, "--run", "e2e-run"]
    argv += [a for s in [*TINY, "run.total_env_steps=3000"] for a in ("--set", s)]
    thread, holder = _in_thread(lambda: main(argv))

    client = connect(redis_server.url)
    seen_keys: set[bytes] = set()
    seen_actors: set[str] = set()
    while thread.is_alive():  # watch the namespace while the fleet runs
        seen_keys.update(client.keys("*"))
        seen_actors.update(alive_actors(client, "e2e-run"))
        time.sleep(0.2)
    thread.join()
    assert holder["result"] == 0

    assert seen_keys, "the fleet never touched Redis"
    assert all(k.startswith(b"rlfleet:e2e-run:") for k in seen_keys), sorted(seen_keys)
    for part in (b"params:version", b"params:data", b"pushed", b"actors", b"learners"):
        assert b"rlfleet:e2e-run:" + part in seen_keys, part
    assert seen_actors == {"0", "1"}
    assert client.keys("*") == [], "the run's keys are deleted at the end"

    final = json.loads((run_dir / "final_eval.json").read_text())
    assert final["transport"] == "redis" and final["redis_run"] == "e2e-run"
    assert final["stop_reason"] == "env step budget"
    assert final["env_steps"] >= 3000 and final["updates"] > 0
    assert len(final["final_returns"]) == 3 and final["evaluations"]
    ckpt = latest_checkpoint(run_dir)
    assert ckpt is not None and (ckpt / "model.safetensors").exists()
    config_text = (run_dir / "config.toml").read_text()
    assert 'kind = "redis"' in config_text
    assert redis_server.password not in config_text, "the URL's password must not be saved"


def test_keep_keys_leaves_the_namespace_and_a_taken_name_is_refused(tmp_path, redis_server):
    overrides = [*TINY, "run.total_env_steps=1500", "transport.kind=redis", "transport.run=kept"]
    fleet = LocalFleet(
        build_config("cartpole", [*overrides, "transport.keep_keys=true"]),
        tmp_path / "a",
        show_progress=False,
        redis_url=redis_server.url,
    )
    result = fleet.run()
    assert result.updates > 0 and result.final_returns
    client = connect(redis_server.url)
    keys = client.keys("*")
    assert b"rlfleet:kept:status" in keys
    assert client.hget("rlfleet:kept:status", "stop") == b"1"
    # a new run under the same name starts clean (the old run is over: no live claim)
    second = LocalFleet(
        build_config("cartpole", overrides),
        tmp_path / "b",
        show_progress=False,
        redis_url=redis_server.url,
    )
    assert second.run().updates > 0
    assert client.keys("*") == []


def test_redis_crash_and_restart_mid_run_the_fleet_recovers(tmp_path, redis_server):
    config = build_config(
        "cartpole",
        [
            *TINY,
            "run.total_env_steps=0",
            "run.max_seconds=25",
            "transport.kind=redis",
            "transport.max_backlog=8",
        ],
    )
    fleet = LocalFleet(config, tmp_path / "run", show_progress=False, redis_url=redis_server.url)
    thread, holder = _in_thread(fleet.run)
    deadline = time.monotonic() + 20
    while fleet.result.updates < 20 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert fleet.result.updates >= 20, "the fleet never started learning"

    redis_server.kill()  # SIGKILL, no persistence: every key is gone
    updates_at_kill = fleet.result.updates
    time.sleep(2.0)
    redis_server.start()  # same port, same password
    thread.join(timeout=90)
    assert not thread.is_alive()
    result = holder["result"]

    assert result.stop_reason == "time budget"
    assert result.updates > updates_at_kill, "the learner kept learning after the outage"
    assert result.transport_dropped > 0 and result.transport_backlog_peak > 0
    assert result.final_returns, "the final evaluation ran on parameters published after"
    assert result.actor_restarts == 0, "an outage is not a crash"
    metrics = read_metrics(tmp_path / "run")
    assert "transport/dropped" in metrics and "transport/backlog" in metrics
    assert max(row[-1] for row in metrics["transport/dropped"]) <= result.transport_dropped


def test_learner_and_actor_commands_form_a_fleet_across_hosts(tmp_path, redis_server):
    """`rlfleet learner` (no local actors) + `rlfleet actor` joining by run name: the run's
    config comes from Redis, the remote actors' env steps count toward the budget, and the
    actor command ends by itself when the learner host stops the run."""
    run_dir = tmp_path / "run"
    learner_argv = ["learner", "cartpole", "--run-dir", str(run_dir), "--quiet"]
    learner_argv += ["--redis", redis_server.url, "--run", "split"]
    # a short queue: remote actors that start at full speed must wait for the learner
    # (backpressure) instead of spending the whole budget before its first update
    sets = [*TINY, "run.total_env_steps=3000", "transport.max_queue=8"]
    sets += ["transport.max_backlog=4", "transport.block_timeout_s=2"]
    learner_argv += [a for s in sets for a in ("--set", s)]
    actor_argv = ["actor", "--redis", redis_server.url, "--run", "split", "--actors", "2"]
    actors, actors_out = _in_thread(lambda: main(actor_argv))  # may start before the learner
    learner, learner_out = _in_thread(lambda: main(learner_argv))
    learner.join(timeout=240)
    actors.join(timeout=60)
    assert not learner.is_alive() and not actors.is_alive()
    assert learner_out["result"] == 0 and actors_out["result"] == 0

    final = json.loads((run_dir / "final_eval.json").read_text())
    assert final["num_actors"] == 0, "no actor ran on the learner's host"
    assert final["stop_reason"] == "env step budget" and final["env_steps"] >= 3000
    assert final["updates"] > 0 and final["final_returns"]
    assert connect(redis_server.url).keys("*") == []
