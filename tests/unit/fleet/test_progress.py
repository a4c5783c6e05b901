"""The progress line: the learner's own fields, and its notice in place of counters at zero."""

from __future__ import annotations

from rlfleet.cli.presets import build_config
from rlfleet.fleet.progress import Progress

SNAPSHOT = {
    "wall_s": 65.0,
    "env_steps": 12345,
    "steps_per_s": 800.0,
    "updates": 99,
    "updates_per_s": 10.0,
    "progress": {"queued unrolls": 4},
    "notice": None,
    "episode_return": 21.5,
    "last_eval": 30.0,
    "solved_at_s": None,
    "actors": 2,
    "restarts": 0,
}


def test_the_line_shows_the_learners_fields_and_an_eta():
    progress = Progress(build_config("cartpole", ["run.max_seconds=100"]), enabled=False)
    line = progress.render(SNAPSHOT)
    assert line.startswith("CartPole-v1  0:01:05  env steps 12,345 (800/s)")
    assert "queued unrolls 4" in line and "last eval 30.0" in line and "ETA 0:00:35" in line


def test_a_notice_replaces_the_counters_that_would_stay_at_zero():
    progress = Progress(build_config("cartpole", []), enabled=False)
    line = progress.render({**SNAPSHOT, "notice": "pre-training on demonstrations: 5 of 10"})
    assert "pre-training on demonstrations: 5 of 10" in line and "queued unrolls" not in line


def test_the_first_seconds_say_what_they_are_spent_on_then_the_start_up_times():
    progress = Progress(build_config("cartpole", []), enabled=False)
    starting = progress.render({**SNAPSHOT, "wall_s": 1.0, "env_steps": 0})
    assert "starting" in starting and "env steps" not in starting
    line = progress.render(
        {**SNAPSHOT, "wall_s": 10.0, "first_env_step_s": 1.6, "first_update_s": 2.1}
    )
    assert line.endswith("first env step 1.6s  first update 2.1s")
    later = progress.render({**SNAPSHOT, "wall_s": 120.0, "first_env_step_s": 1.6})
    assert "first env step" not in later
