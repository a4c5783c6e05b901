"""DAgger and behaviour cloning end to end on a tiny label budget: the expert's labels reach the
learner within the budget, iterations publish new policies, the run resumes with its dataset,
and a whole fleet runs in one process (``--in-process``)."""

from __future__ import annotations

import json

from rlfleet.agents.common.checkpoint import latest_checkpoint, read_state
from rlfleet.cli.main import main
from rlfleet.fleet.metrics import read_metrics

TINY = [
    "dagger.max_labels=600",
    "dagger.labels_per_iteration=200",
    "learner.updates_per_iteration=50",
    "learner.max_updates=1500",
    "actor.num_actors=1",
    "run.stop_on_solve=false",
    "run.max_seconds=60",
    "eval.episodes=3",
    "eval.final_episodes=3",
    "eval.interval_s=0.5",
    "run.log_interval_s=0.25",
]


def sets(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def test_dagger_collects_its_budget_iterates_and_resumes_with_its_dataset(tmp_path):
    run = tmp_path / "run"
    argv = ["train", "dagger-cartpole", "--run-dir", str(run), "--quiet", *sets(TINY)]
    assert main(argv) == 0
    final = json.loads((run / "final_eval.json").read_text())
    assert final["stop_reason"] == "update budget" and final["updates"] == 1500
    assert final["final_returns"] and final["env_steps"] >= 600
    state = read_state(latest_checkpoint(run))
    assert state["counters"]["labels"] == 600 and state["dataset_size"] == 600
    assert state["counters"]["version"] >= 1500 // 50, "one policy per iteration of 50 updates"
    metrics = read_metrics(run)
    assert metrics["dagger/labels"][-1][3] == 600.0, "exactly the label budget"
    assert max(row[3] for row in metrics["learner/accuracy"]) > 0.8

    resume = ["train", "--resume", str(run), "--quiet", *sets(["learner.max_updates=2000"])]
    assert main(resume) == 0
    state = read_state(latest_checkpoint(run))
    assert state["counters"]["updates"] == 2000 and state["dataset_size"] == 600
    assert state["counters"]["labels"] == 600, "the budget was already spent"


def test_behaviour_cloning_runs_in_one_process(tmp_path):
    run = tmp_path / "run"
    argv = ["train", "bc-mountaincar", "--run-dir", str(run), "--quiet", "--in-process"]
    assert main([*argv, *sets(TINY)]) == 0
    final = json.loads((run / "final_eval.json").read_text())
    assert final["placement"] == "threads" and final["stop_reason"] == "update budget"
    assert final["final_returns"] and read_metrics(run)["dagger/beta"][-1][3] == 1.0
