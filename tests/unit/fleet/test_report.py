"""The run report against fake status messages: env steps over actor incarnations and remote
actors, evaluations and the solve criterion, budgets, metric rows and the progress snapshot."""

from __future__ import annotations

import pytest

from rlfleet.cli.presets import build_config
from rlfleet.fleet.report import RunReport, RunResult


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def report(*overrides: str, base_env_steps: int = 0) -> tuple[RunReport, Clock]:
    config = build_config("cartpole", list(overrides))
    clock = Clock()
    return RunReport(config, RunResult("run"), base_env_steps=base_env_steps, wall=clock), clock


def stats(env_steps: int, **extra) -> dict:
    return {"env_steps": env_steps, "episode_returns": [], "episode_lengths": [], **extra}


def test_env_steps_add_up_over_actors_incarnations_and_a_resumed_base():
    r, _ = report(base_env_steps=1000)
    r.on_actor_stats((0, 0), stats(50))
    r.on_actor_stats((0, 0), stats(80))  # cumulative per incarnation: replaces
    r.on_actor_stats((0, 1), stats(30))  # the restarted actor counts from zero
    r.on_actor_stats(("remote:r1", 0), stats(40))
    assert r.env_steps() == 1000 + 80 + 30 + 40 and r.has_remote_actors()
    with pytest.raises(KeyError):
        r.on_actor_stats((1, 0), {"episode_returns": []})  # well-formed, wrong fields


def test_transport_drops_add_up_and_backlog_counts_the_latest_incarnation():
    r, _ = report()
    r.on_actor_stats((0, 0), stats(1, dropped=3, backlog=5))
    r.on_actor_stats((0, 1), stats(1, dropped=2, backlog=1))
    r.on_actor_stats((1, 0), stats(1, dropped=0, backlog=4))
    assert r.transport_counts() == (5, 5)
    assert r.result.transport_dropped == 5 and r.result.transport_backlog_peak == 5


def test_solved_after_consecutive_evaluations_at_the_threshold():
    r, clock = report("eval.solve_threshold=475", "eval.solve_consecutive=2")
    r.on_actor_stats((0, 0), stats(500))
    for t, value in ((1.0, 480.0), (2.0, 300.0), (3.0, 476.0)):
        clock.now = t
        r.on_message("eval", {"return_mean": value, "return_std": 1.0, "version": 3})
        assert not r.result.solved
    clock.now = 4.0
    r.on_message("eval", {"return_mean": 500.0, "return_std": 0.0, "version": 4})
    assert r.result.solved and r.result.solved_at_s == 4.0 and r.result.solved_at_env_steps == 500
    assert len(r.result.evaluations) == 4 and r.eval_row()["eval/return_mean"] == 500.0
    assert r.budget_stop() == "solved"


def test_budgets_in_order_env_steps_time_updates():
    r, clock = report("run.total_env_steps=100", "run.max_seconds=10", "run.stop_on_solve=false")
    assert r.budget_stop() is None
    r.on_message("budget_reached", {"updates": 5})
    assert r.budget_stop() == "update budget"
    clock.now = 11.0
    assert r.budget_stop() == "time budget"
    r.on_actor_stats((0, 0), stats(100))
    assert r.budget_stop() == "env step budget"


def test_learner_events_and_errors_land_in_the_result():
    r, _ = report()
    r.on_message("learner_stats", {"updates": 7, "metrics": {"learner/loss": 0.5}})
    r.on_message("checkpoint", {"path": "ckpt-7"})
    r.on_message("error", {"role": "actor", "index": 1, "message": "boom"})
    assert r.learner_error is None and r.last_role_error == "actor[1]: boom"
    r.on_message("error", {"role": "learner", "index": 0, "message": "diverged"})
    r.on_message("stopped", {"path": "ckpt-9", "updates": 9})
    assert r.learner_error == "diverged" and r.result.checkpoint == "ckpt-9"
    assert r.result.updates == 9


def test_metric_rows_carry_the_interval_and_the_learners_metrics():
    r, clock = report()
    r.on_actor_stats((0, 0), stats(10, episode_returns=[10.0, 20.0], push_latency_ms=2.0))
    r.on_actor_stats((1, 0), stats(10, episode_lengths=[5, 7], push_latency_ms=4.0))
    r.on_message(
        "learner_stats",
        {"updates": 3, "metrics": {"replay/size": 99.0}, "progress": {"replay": 99}},
    )
    row = r.row(steps_per_s=20.0, updates_per_s=3.0, restarts=1)
    assert row["env/episode_return"] == 15.0 and row["env/episode_length"] == 6.0
    assert row["transport/push_latency_ms"] == 3.0 and row["replay/size"] == 99.0
    assert row["fleet/actor_restarts"] == 1
    assert r.row(0.0, 0.0, 1)["env/episode_return"] is None, "a new interval"
    clock.now = 5.0
    snap = r.snapshot(actors=2, restarts=1)
    assert snap["progress"] == {"replay": 99} and snap["episode_return"] == 15.0
    assert snap["wall_s"] == 5.0 and snap["updates"] == 3 and snap["notice"] is None


def test_a_learner_report_not_yet_in_a_row_is_known_until_written():
    r, _ = report()
    assert not r.learner_fresh
    r.on_message("learner_stats", {"updates": 3, "metrics": {"seq/reward": 0.5}})
    assert r.learner_fresh
    r.row(0.0, 0.0, 0)
    assert not r.learner_fresh, "the row carried it"
    r.on_message("learner_stats", {"updates": 4, "metrics": {"seq/reward": 0.7}})
    assert r.learner_row() == {"seq/reward": 0.7} and not r.learner_fresh
    # two reports between rows merge: the later one's values win, the earlier one's stay
    r.on_message("learner_stats", {"updates": 5, "metrics": {"seq/reward": 0.9, "a": 1.0}})
    r.on_message("learner_stats", {"updates": 5, "metrics": {"a": 2.0}})
    assert r.row(0.0, 0.0, 0)["seq/reward"] == 0.9 and r.learner_row()["a"] == 2.0
    r.on_message("learner_stats", {"updates": 6, "metrics": {"b": 1.0}})
    assert r.learner_row() == {"b": 1.0}, "a new interval starts from the next report"


def test_a_run_that_stopped_on_solving_ends_with_the_parameters_that_solved():
    r, _ = report()
    last = {"version": 9, "returns": [300.0, 320.0], "lengths": [300, 320], "seconds": 1.0}
    best = {"version": 6, "returns": [500.0, 500.0], "lengths": [500, 500]}
    r.on_message("final_eval", {**last, "best": best})
    r.result.stop_reason = "solved"
    section = r.settle_final()
    assert r.result.final_returns == [500.0, 500.0] and r.result.final_params == "best"
    assert r.result.final_version == 6 and section["returns"] == [300.0, 320.0]
    assert section["best"]["version"] == 6, "both are reported"
    r.result.stop_reason = "time budget"  # not stopped on solving: the last parameters
    r.settle_final()
    assert r.result.final_return_mean == 310.0 and r.result.final_params == "last"
    r.on_message("final_eval", {**last, "best": None})  # best == last: evaluated once
    r.result.stop_reason = "solved"
    r.settle_final()
    assert r.result.final_params == "last" and r.result.final_version == 9
