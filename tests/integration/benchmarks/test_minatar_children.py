"""``rlfleet bench minatar`` on budgets of seconds: the rlfleet child (a real ``rlfleet train
impala-minatar-breakout`` process) and the SB3 PPO child each produce a complete record, one after
the other, and the report and JSON document are built from them (structure, no score thresholds).
"""

from __future__ import annotations

import importlib.util
import json
import math

import pytest

from benchmarks.minatar.report import build_payload, print_report, table_rows
from benchmarks.minatar.runs import run_rlfleet, run_sb3

pytest.importorskip("minatar")

HAS_SB3 = importlib.util.find_spec("stable_baselines3") is not None


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def test_rlfleet_and_sb3_children_each_produce_a_record(tmp_path, capsys):
    records = []
    rl = run_rlfleet(
        "rlfleet-impala",
        0,
        "breakout",
        # 30 s, not less: on a loaded 2-core machine the child spent its first ~20 s starting
        # (imports, forkserver, first parameters) and logged no env step by a 20 s mark.
        budget_s=30.0,
        minutes=[15 / 60, 30 / 60],
        eval_interval_s=2.0,
        eval_episodes=3,
        final_episodes=4,
        overrides=["env.envs_per_actor=8"],
        run_root=str(tmp_path / "runs"),
    )
    records.append(rl)
    assert rl.error is None, rl.error
    assert rl.stop_reason == "time budget" and rl.run_dir is not None
    assert [round(c.minute * 60) for c in rl.checkpoints] == [15, 30]
    last = rl.checkpoints[-1]
    assert last.env_steps and last.env_steps > 0 and last.at_s <= 30.0
    assert last.env_steps_per_s == pytest.approx(last.env_steps / last.at_s, abs=0.1)
    assert _finite(last.eval_return_mean) and last.eval_episodes == 3 and last.eval_at_s <= 30.0
    assert len(rl.final_returns) == 4 and _finite(rl.final_return_mean)
    assert rl.env_steps >= last.env_steps and rl.updates and rl.updates > 0
    assert "--run-dir" in rl.command and "run.max_seconds=30.0" in rl.command

    if HAS_SB3:
        sb3 = run_sb3(
            "sb3-ppo",
            0,
            "breakout",
            budget_s=10.0,
            minutes=[8 / 60, 10 / 60],
            eval_episodes=3,
            final_episodes=4,
            torch_threads=1,
        )
        records.append(sb3)
        assert sb3.error is None, sb3.error
        assert sb3.stop_reason == "time budget"
        assert [round(c.minute * 60) for c in sb3.checkpoints] == [8, 10]
        for cp in sb3.checkpoints:  # SB3 evaluates at the minute of its clock
            assert cp.at_s >= cp.minute * 60 and cp.eval_at_s == cp.at_s
            assert _finite(cp.eval_return_mean) and cp.eval_episodes == 3
        steps = [cp.env_steps for cp in sb3.checkpoints]
        assert steps == sorted(steps) and steps[-1] > 0
        assert sb3.eval_s is not None and sb3.eval_s > 0 and len(sb3.evaluations) == 2
        assert len(sb3.final_returns) == 4 and sb3.env_steps >= steps[-1]
        assert sb3.details["torch_threads"] == 1 and sb3.details["n_envs"] == 8

    payload = build_payload(
        records,
        game="breakout",
        # 30 s, not less: on a loaded 2-core machine the child spent its first ~20 s starting
        # (imports, forkserver, first parameters) and logged no env step by a 20 s mark.
        budget_s=30.0,
        minutes=[15 / 60, 30 / 60],
        eval_interval_s=2.0,
        eval_episodes=3,
        final_episodes=4,
        seeds=[0],
        overrides=["env.envs_per_actor=8"],
        skipped=[] if HAS_SB3 else ["sb3-ppo"],
        quick=True,
        machine={"cpu_count": 2},
    )
    doc = json.loads(json.dumps(payload))
    assert [r["impl"] for r in doc["runs"]] == [r.impl for r in records]
    assert len(doc["table"]) == len(table_rows(records)) == 3 * len(records)
    print_report(records, "MinAtar/Breakout-v1", 20.0)
    out = capsys.readouterr().out
    assert "rlfleet-impala" in out and "final" in out
