"""Pure helpers of ``rlfleet bench cartpole``: solve criterion, cap rule, medians, ratios."""

from __future__ import annotations

import pytest

from benchmarks.cartpole.records import (
    RunRecord,
    SolveTracker,
    finalize,
    record_from_final_eval,
)
from benchmarks.cartpole.report import ratios, summarise
from benchmarks.sb3_peers import linear_schedule

pytestmark = pytest.mark.unit


def test_solve_needs_two_consecutive_evaluations_at_or_above_475():
    t = SolveTracker()
    assert [t.update(m) for m in (480.0, 100.0, 475.0)] == [False, False, False]
    assert t.update(500.0) is True
    assert t.solved_at == 4
    assert t.update(10.0) is True  # solved stays solved
    assert t.solved_at == 4 and t.count == 5


def test_solve_tracker_threshold_and_streak_are_parameters():
    t = SolveTracker(threshold=10.0, consecutive=3)
    assert not any(t.update(m) for m in (10.0, 11.0, 9.9, 10.0, 10.0))
    assert t.update(12.0) and t.solved_at == 6


def test_linear_schedule_is_the_zoo_lin():
    f = linear_schedule(0.2)
    assert f(1.0) == pytest.approx(0.2) and f(0.5) == pytest.approx(0.1) and f(0.0) == 0.0


def test_finalize_solved_within_cap_sets_times_including_and_excluding_eval():
    rec = RunRecord("sb3-ppo", 0, cap_s=60.0, eval_s=4.0, env_steps_to_solve=1000)
    finalize(rec, solved_at_unix=1030.0, launch_unix=1000.0)
    assert rec.solved and rec.time_to_solve_s == 30.0 and rec.time_excl_eval_s == 26.0
    assert rec.headline_s == 26.0


def test_finalize_unsolved_or_after_cap_counts_as_cap():
    rec = finalize(RunRecord("rlfleet", 1, cap_s=60.0), None, 1000.0)
    assert not rec.solved and rec.time_to_solve_s == 60.0 and rec.headline_s == 60.0
    late = RunRecord("sb3-dqn", 1, cap_s=60.0, eval_s=5.0, env_steps_to_solve=9)
    finalize(late, solved_at_unix=1061.0, launch_unix=1000.0)
    assert not late.solved and late.time_to_solve_s == 60.0 and late.time_excl_eval_s == 60.0
    assert late.env_steps_to_solve is None and "after the cap" in late.stop_reason


def _solved(impl: str, seed: int, t: float, steps: int, eval_s: float | None = None) -> RunRecord:
    rec = RunRecord(impl, seed, cap_s=100.0, eval_s=eval_s, env_steps_to_solve=steps)
    rec.evaluations = 3
    return finalize(rec, 1000.0 + t, 1000.0)


def test_summary_medians_count_unsolved_as_cap_and_ratios_use_peer_headline():
    recs = [
        _solved("rlfleet", 0, 10.0, 100),
        _solved("rlfleet", 1, 30.0, 300),
        finalize(RunRecord("rlfleet", 2, cap_s=100.0), None, 0.0),
        _solved("sb3-ppo", 0, 44.0, 400, eval_s=4.0),
        _solved("sb3-ppo", 1, 64.0, 600, eval_s=4.0),
    ]
    s = summarise(recs)
    assert s["rlfleet"]["solved"] == 2 and s["rlfleet"]["runs"] == 3
    assert s["rlfleet"]["median_time_to_solve_s"] == 30.0  # 10, 30, cap 100
    assert s["rlfleet"]["median_env_steps_to_solve"] == 200.0  # solved runs only
    assert s["sb3-ppo"]["median_headline_s"] == 50.0  # (40 + 60) / 2, excluding eval
    assert s["sb3-ppo"]["median_time_to_solve_s"] == 54.0
    r = ratios(s, cap_s=100.0)
    assert r["sb3-ppo"]["headline"] == pytest.approx(50.0 / 30.0, abs=1e-3)
    assert r["sb3-ppo"]["incl_eval"] == pytest.approx(54.0 / 30.0, abs=1e-3)
    assert r["sb3-ppo"]["bound"] == ""


def test_ratios_at_the_cap_are_bounds():
    unsolved = lambda impl: finalize(RunRecord(impl, 0, cap_s=100.0), None, 0.0)  # noqa: E731
    peer_capped = summarise([_solved("rlfleet", 0, 20.0, 1), unsolved("sb3-dqn")])
    assert ratios(peer_capped, 100.0)["sb3-dqn"]["bound"] == ">="
    base_capped = summarise([unsolved("rlfleet"), _solved("sb3-dqn", 0, 20.0, 1, eval_s=1.0)])
    assert ratios(base_capped, 100.0)["sb3-dqn"]["bound"] == "<="
    both = summarise([unsolved("rlfleet"), unsolved("sb3-dqn")])
    assert ratios(both, 100.0)["sb3-dqn"]["bound"] == "n/a"


def test_ratios_empty_without_rlfleet():
    assert ratios(summarise([_solved("sb3-dqn", 0, 5.0, 1, eval_s=1.0)]), 100.0) == {}


def _final_eval(solved: bool) -> dict:
    evals = [
        {"wall_s": 10.0, "env_steps": 100, "return_mean": 480.0},
        {"wall_s": 11.0, "env_steps": 200, "return_mean": 500.0},
        {"wall_s": 12.0, "env_steps": 300, "return_mean": 500.0},  # after the solve
    ]
    return {
        "solved": solved,
        "solved_at_s": 11.0 if solved else None,
        "solved_at_env_steps": 200 if solved else None,
        "solved_at_unix": 1011.5 if solved else None,
        "stop_reason": "solved" if solved else "time budget",
        "env_steps": 350,
        "evaluations": evals,
    }


def test_rlfleet_record_counts_evaluations_up_to_the_solve_and_times_from_launch():
    rec = RunRecord("rlfleet", 0, cap_s=60.0)
    record_from_final_eval(rec, _final_eval(True), launch_unix=1000.0)
    assert rec.solved and rec.time_to_solve_s == 11.5 and rec.env_steps_to_solve == 200
    assert rec.evaluations == 2 and len(rec.curve) == 3 and rec.env_steps == 350
    rec = record_from_final_eval(RunRecord("rlfleet", 0, 60.0), _final_eval(False), 1000.0)
    assert not rec.solved and rec.time_to_solve_s == 60.0 and rec.evaluations == 3


def test_rlfleet_record_times_start_up_from_launch():
    fe = {**_final_eval(True), "start_unix": 1000.5, "first_env_step_s": 2.0}
    fe["first_update_s"] = 3.25
    rec = record_from_final_eval(RunRecord("rlfleet", 0, cap_s=60.0), fe, launch_unix=1000.0)
    assert rec.first_env_step_s == 2.5 and rec.first_update_s == 3.75  # + interpreter start
    rec = record_from_final_eval(RunRecord("rlfleet", 0, 60.0), _final_eval(True), 1000.0)
    assert rec.first_env_step_s is None and rec.first_update_s is None  # older runs: unknown
