"""DQfD and Ape-X DQfD fleets on tiny budgets: record -> train (local and Redis) -> resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_budget import TINY

from rlfleet.agents.common.checkpoint import latest_checkpoint, read_state
from rlfleet.cli.main import main
from rlfleet.fleet.metrics import read_metrics
from rlfleet.replay import load_demos


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("demos") / "mc.npz"
    policy = "rlfleet.envs.demonstrators:mountain_car_pump"
    argv = ["record", "MountainCar-v0", "--policy", policy, "--episodes", "3"]
    assert main([*argv, "--out", str(path)]) == 0
    return path


def train(run_dir: Path, mode: str, demo_file: Path, *extra: str) -> dict:
    overrides = [
        *TINY,
        "run.total_env_steps=2000",
        f'dqfd.mode="{mode}"',
        f'dqfd.demos="{demo_file}"',
        *extra,
    ]
    argv = ["train", "mountaincar", "--run-dir", str(run_dir), "--quiet"]
    assert main([*argv, *[a for s in overrides for a in ("--set", s)]]) == 0
    return json.loads((run_dir / "final_eval.json").read_text())


def test_dqfd_pretrains_then_learns_and_resumes_without_pretraining_again(tmp_path, demo_file):
    run = tmp_path / "dqfd"
    final = train(run, "dqfd", demo_file, "dqfd.pretrain_updates=50")
    assert final["stop_reason"] == "env step budget" and final["updates"] > 50
    state = read_state(latest_checkpoint(run))
    assert state["counters"]["pretrain_updates"] == 50
    names = set(read_metrics(run))
    assert {"learner/j_dq", "learner/j_n", "learner/j_e", "learner/l2"} <= names

    # The first run may overshoot its budget under load; give the resumed run its own 1500.
    budget = f"run.total_env_steps={final['env_steps'] + 1500}"
    argv = ["train", "--resume", str(run), "--quiet", "--set", budget]
    assert main(argv) == 0
    state = read_state(latest_checkpoint(run))
    assert state["counters"]["pretrain_updates"] == 50  # not pre-trained a second time
    assert state["counters"]["updates"] > final["updates"]

    # the trained agent can demonstrate in turn: record from its checkpoint
    out = tmp_path / "from-checkpoint.npz"
    argv = ["record", "MountainCar-v0", "--checkpoint", str(run), "--episodes", "2"]
    assert main([*argv, "--out", str(out)]) == 0
    demos = load_demos(out, expect_env_id="MountainCar-v0")
    assert demos.num_episodes == 2 and demos.source.startswith("checkpoint:")


def test_apex_dqfd_trains_over_the_local_transport(tmp_path, demo_file):
    run = tmp_path / "apex-dqfd"
    final = train(run, "apex-dqfd", demo_file, "algo.gamma=0.999")
    assert final["updates"] > 0 and len(final["final_returns"]) == 3
    names = set(read_metrics(run))
    assert {"learner/j_n", "learner/j_e", "learner/tc"} <= names
    assert "learner/j_dq" not in names  # Ape-X DQfD has no 1-step term


def test_apex_dqfd_trains_over_redis(tmp_path, demo_file, redis_server):
    run = tmp_path / "apex-dqfd-redis"
    final = train(
        run,
        "apex-dqfd",
        demo_file,
        "algo.gamma=0.999",
        "transport.kind=redis",
        'transport.run="dqfd-e2e"',
    )
    assert final["transport"] == "redis" and final["updates"] > 0
    assert final["env_steps"] >= 2000


@pytest.fixture(autouse=True)
def _redis_url_env(request, monkeypatch):
    """The Redis test passes its URL the way users do: through $RLFLEET_REDIS_URL."""
    if "redis_server" in request.fixturenames:
        server = request.getfixturevalue("redis_server")
        monkeypatch.setenv("RLFLEET_REDIS_URL", server.url)
