"""``rlfleet evaluator`` beside a split fleet (``rlfleet learner`` + ``rlfleet actor``) on a tiny
budget: it evaluates the run's parameters as they are published, ends with the run, and leaves
the learner host's own evaluator and the run's cleanup untouched."""

from __future__ import annotations

import csv
import json
import threading
from typing import Any

from tiny_budget import TINY

import rlfleet.fleet.bootstrap  # noqa: F401  (see _in_thread)
import rlfleet.fleet.hosts.actors  # noqa: F401
import rlfleet.fleet.hosts.evaluator  # noqa: F401
import rlfleet.fleet.launcher  # noqa: F401
from rlfleet.cli.main import main
from rlfleet.transport.redis import connect


def _in_thread(argv: list[str]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run one CLI command in a thread. The role modules are imported above, once: three
    commands importing the same package for the first time in parallel threads can each see
    it half-initialised (a CPython import race; real commands run in separate processes)."""
    holder: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: holder.setdefault("rc", main(argv)), daemon=True)
    thread.start()
    return thread, holder


def test_evaluator_command_follows_a_split_fleet_and_ends_with_it(tmp_path, redis_server):
    run_dir, evals = tmp_path / "run", tmp_path / "evals"
    # long enough (several counter writes, ~1 s apart) for the labels to move under CI load
    sets = [*TINY, "run.total_env_steps=12000", "transport.max_queue=8"]
    sets += ["transport.max_backlog=4", "transport.block_timeout_s=2", "eval.interval_s=0.5"]
    learner_argv = ["learner", "cartpole", "--run-dir", str(run_dir), "--quiet"]
    learner_argv += ["--redis", redis_server.url, "--run", "evaluated"]
    learner_argv += [a for s in sets for a in ("--set", s)]
    actor_argv = ["actor", "--redis", redis_server.url, "--run", "evaluated", "--actors", "1"]
    eval_argv = ["evaluator", "--redis", redis_server.url, "--run", "evaluated"]
    eval_argv += ["--out", str(evals), "--interval", "0.3", "--episodes", "2"]

    evaluator, eval_out = _in_thread(eval_argv)  # before the learner: it waits for the run
    actors, actors_out = _in_thread(actor_argv)
    learner, learner_out = _in_thread(learner_argv)
    learner.join(timeout=240)
    actors.join(timeout=60)
    evaluator.join(timeout=60)
    assert not learner.is_alive() and not actors.is_alive()
    assert not evaluator.is_alive(), "rlfleet evaluator did not end with the run"
    assert learner_out["rc"] == 0 and actors_out["rc"] == 0 and eval_out["rc"] == 0

    with open(evals / "evaluations.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows, "no evaluation rows"
    versions = [int(r["version"]) for r in rows]
    assert versions == sorted(set(versions)) and versions[0] >= 1, "one row per new version"
    assert all(int(r["episodes"]) == 2 and float(r["length_mean"]) > 0 for r in rows)
    # labelled with the counters the learner host's launcher writes into the run's status hash
    steps, updates = [int(r["env_steps"]) for r in rows], [int(r["updates"]) for r in rows]
    assert steps == sorted(steps) and steps[-1] > 0, steps
    assert updates == sorted(updates) and updates[-1] > 0, updates
    saved = json.loads((evals / "evaluations.json").read_text())
    assert saved["stop_reason"] == "run stopped" and saved["env_id"] == "CartPole-v1"
    assert len(saved["evaluations"]) == len(rows)

    # the learner host's own evaluator was not disturbed
    final = json.loads((run_dir / "final_eval.json").read_text())
    assert final["stop_reason"] == "env step budget"
    assert final["evaluations"] and final["final_returns"]
    assert connect(redis_server.url).keys("*") == [], "the run's keys are all gone"
