"""Whole Ape-X fleets on tiny budgets: actors, learner, evaluator, checkpoint, resume, restarts."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pytest
from tiny_budget import TINY as TINY_BUDGET

from rlfleet.agents.common.checkpoint import latest_checkpoint, read_state
from rlfleet.cli.main import main
from rlfleet.cli.policies import load_greedy_policy
from rlfleet.cli.presets import build_config
from rlfleet.fleet.launcher import LocalFleet
from rlfleet.fleet.metrics import read_metrics

TINY = [*TINY_BUDGET, "run.snapshot_replay=true"]


def test_train_checkpoint_and_resume_continue_counters_and_curves(tmp_path):
    run = tmp_path / "run"
    argv = [
        "train",
        "cartpole",
        "--run-dir",
        str(run),
        "--quiet",
        *[a for s in TINY for a in ("--set", s)],
    ]
    assert main([*argv, "--set", "run.total_env_steps=3000"]) == 0

    final = json.loads((run / "final_eval.json").read_text())
    assert final["stop_reason"] == "env step budget"
    assert final["env_steps"] >= 3000 and final["updates"] > 0
    assert len(final["final_returns"]) == 3 and final["evaluations"]
    ckpt = latest_checkpoint(run)
    assert ckpt is not None and (ckpt / "model.safetensors").exists() and (ckpt / "replay").exists()
    first = read_state(ckpt)["counters"]
    assert first["updates"] == final["updates"] and first["version"] > 1
    rows_before = sum(len(v) for v in read_metrics(run).values())
    assert (run / "config.toml").exists() and any((run / "tensorboard").iterdir())

    # stop on an update budget past the checkpoint: an env-step budget could run out before the
    # restored learner takes its first step, which would not tell us that learning resumed
    target_updates = first["updates"] + 50
    resume = ["train", "--resume", str(run), "--quiet", "--set", "run.total_env_steps=0"]
    resume += ["--set", f"learner.max_updates={target_updates}", "--set", "run.max_seconds=90"]
    assert main(resume) == 0
    resumed = json.loads((run / "final_eval.json").read_text())
    assert resumed["stop_reason"] == "update budget"
    second = read_state(latest_checkpoint(run))["counters"]
    assert second["updates"] >= target_updates
    assert second["env_steps"] > first["env_steps"] and resumed["env_steps"] > final["env_steps"]
    assert second["elapsed_s"] > first["elapsed_s"]
    metrics = read_metrics(run)
    assert sum(len(v) for v in metrics.values()) > rows_before
    steps = [row[1] for row in metrics["env/steps_per_s"]]
    assert steps == sorted(steps), "env-step axis must continue, not restart, after resume"

    assert main(["plot", str(run)]) == 0
    assert (run / "curves.png").stat().st_size > 10_000
    assert "learner/q_mean" in metrics

    policy = load_greedy_policy(str(run))  # what `rlfleet netsim eval checkpoint:RUN` uses
    assert {policy(np.array([0.0, 0.0, x, 0.0], np.float32)) for x in (-0.1, 0.1)} <= {0, 1}


def test_dead_actor_is_restarted_and_learning_goes_on(tmp_path):
    config = build_config("cartpole", [*TINY, "run.total_env_steps=0", "run.max_seconds=25"])
    fleet = LocalFleet(config, tmp_path / "run", show_progress=False)
    holder: dict = {}
    thread = threading.Thread(target=lambda: holder.setdefault("result", fleet.run()))
    thread.start()
    deadline = time.monotonic() + 20
    while fleet.result.updates < 20 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert fleet.result.updates >= 20, "the fleet never started learning"
    victim = fleet.supervisor.get("actor", 1).handle
    os.kill(victim.pid, signal.SIGKILL)
    updates_at_kill = fleet.result.updates
    thread.join(timeout=60)
    assert not thread.is_alive()
    result = holder["result"]
    assert result.actor_restarts >= 1
    assert result.updates > updates_at_kill
    assert result.final_returns, "the final evaluation ran"


@pytest.mark.parametrize("env_id", ["MinAtar/Breakout-v1"])
def test_image_env_runs_end_to_end(tmp_path, env_id):
    run = tmp_path / "run"
    overrides = [
        f"env.id={env_id}",
        "model.torso=minatar",
        "run.total_env_steps=2000",
        "eval.max_episode_steps=200",
        "eval.video=true",
        *[s for s in TINY if not s.startswith("model.")],
    ]
    assert (
        main(
            [
                "train",
                "minatar-breakout",
                "--run-dir",
                str(run),
                "--quiet",
                *[a for s in overrides for a in ("--set", s)],
            ]
        )
        == 0
    )
    final = json.loads((run / "final_eval.json").read_text())
    assert final["updates"] > 0 and final["final_returns"]
    assert (run / "final_eval.gif").stat().st_size > 0


def test_a_budget_shorter_than_start_up_still_ends_the_run_promptly(tmp_path):
    """The stop reaches roles that say hello only after it was sent (it used to reach only roles
    with a link, and the shutdown then waited out its 120 s for the learner)."""
    run_dir = tmp_path / "run"
    argv = ["train", "cartpole", "--run-dir", str(run_dir), "--quiet"]
    argv += [a for s in [*TINY, "run.max_seconds=0.2"] for a in ("--set", s)]
    t0 = time.monotonic()
    assert main(argv) == 0
    final = json.loads((run_dir / "final_eval.json").read_text())
    assert final["stop_reason"] == "time budget" and final["checkpoint"]
    # a generous bound: start-up plus a clean stop, far below the learner's 120 s stop timeout
    assert time.monotonic() - t0 < 90.0
