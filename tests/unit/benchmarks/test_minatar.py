"""Pure parts of ``rlfleet bench minatar``: checkpoints from a run's history, records from a run
folder and from a child's report, the table rows, the JSON document and argument checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.minatar import main
from benchmarks.minatar.protocol import (
    EVAL_SEED_OFFSET,
    PROTOCOL_KEYS,
    game_env_id,
    rlfleet_settings,
)
from benchmarks.minatar.records import (
    Checkpoint,
    RunRecord,
    checkpoints_from_history,
    record_from_child,
    record_from_run,
)
from benchmarks.minatar.report import build_payload, format_return, table_rows
from benchmarks.minatar.sb3_ppo import GreedySB3Policy, scale_observation

pytestmark = pytest.mark.unit

#: (wall_s, env_steps) metrics rows of a fake run: 1,000 env steps/s after 5 s of start-up
PROGRESS = [(float(t), max(0, 1000 * (t - 5))) for t in range(1, 1801, 1)]
EVALS = [
    {"wall_s": 70.0, "env_steps": 65_000, "return_mean": 1.0, "return_std": 0.5},
    {"wall_s": 590.0, "env_steps": 585_000, "return_mean": 8.0, "return_std": 2.0},
    {"wall_s": 600.5, "env_steps": 595_500, "return_mean": 9.0, "return_std": 3.0},
    {"wall_s": 1795.0, "env_steps": 1_790_000, "return_mean": 20.0, "return_std": 4.0},
]


def test_checkpoint_takes_the_last_reading_and_evaluation_at_or_before_the_minute():
    cps = checkpoints_from_history([10, 30], PROGRESS, EVALS, eval_episodes=10)
    ten, thirty = cps
    assert ten.minute == 10.0 and ten.at_s == 600.0 and ten.env_steps == 595_000
    assert ten.env_steps_per_s == pytest.approx(595_000 / 600.0, abs=0.1)
    # the evaluation finished at 600.5 s is after the minute: the one of 590 s counts
    assert ten.eval_return_mean == 8.0 and ten.eval_return_std == 2.0 and ten.eval_at_s == 590.0
    assert ten.eval_env_steps == 585_000 and ten.eval_episodes == 10
    assert thirty.at_s == 1800.0 and thirty.env_steps == 1_795_000
    assert thirty.eval_return_mean == 20.0 and thirty.eval_at_s == 1795.0


def test_checkpoint_order_free_and_empty_before_the_first_reading():
    cps = checkpoints_from_history([0.01, 1.0], list(reversed(PROGRESS)), EVALS[::-1], 10)
    early, minute = cps
    assert early.at_s is None and early.env_steps is None and early.env_steps_per_s is None
    assert early.eval_return_mean is None and early.eval_episodes is None
    assert minute.at_s == 60.0 and minute.env_steps == 55_000
    assert minute.eval_return_mean is None  # the first evaluation finished at 70 s


def _final_eval() -> dict:
    return {
        "stop_reason": "time budget",
        "env_steps": 1_796_000,
        "updates": 3000,
        "evaluations": EVALS,
        "final_returns": [10.0, 20.0, 30.0],
    }


def test_record_from_run_folder_contents():
    rec = RunRecord("rlfleet-impala", 0, 1800.0)
    record_from_run(rec, _final_eval(), PROGRESS, [10, 30], eval_episodes=10)
    assert [c.minute for c in rec.checkpoints] == [10.0, 30.0]
    assert rec.env_steps == 1_796_000 and rec.updates == 3000 and rec.stop_reason == "time budget"
    assert rec.end_at_s == 1800.0 and rec.end_env_steps == 1_795_000
    assert rec.end_env_steps_per_s == pytest.approx(1_795_000 / 1800.0, abs=0.1)
    assert rec.final_return_mean == 20.0
    assert rec.final_return_std == pytest.approx(np.std([10.0, 20.0, 30.0]))
    assert len(rec.evaluations) == 4


def test_record_from_child_report():
    cp = Checkpoint(minute=0.5, at_s=30.0, env_steps=3000, env_steps_per_s=100.0)
    res = {
        "checkpoints": [vars(cp)],
        "evaluations": [{"wall_s": 30.0, "env_steps": 3000, "return_mean": 2.0}],
        "env_steps": 6000,
        "end_at_s": 60.0,
        "final_returns": [1.0, 3.0],
        "eval_s": 1.5,
        "stop_reason": "time budget",
        "sb3_version": "2.9.2",
        "torch_threads": 2,
    }
    rec = record_from_child(RunRecord("sb3-ppo", 1, 60.0), res)
    assert rec.checkpoints == [cp] and rec.eval_s == 1.5 and rec.end_env_steps_per_s == 100.0
    assert rec.final_return_mean == 2.0 and rec.final_return_std == 1.0
    assert rec.details == {"sb3_version": "2.9.2", "torch_threads": 2}


def _records() -> list[RunRecord]:
    rl = record_from_run(
        RunRecord("rlfleet-impala", 0, 1800.0), _final_eval(), PROGRESS, [10, 30], 10
    )
    failed = RunRecord("sb3-ppo", 0, 1800.0, error="child failed (exit 1): boom")
    failed.checkpoints = [Checkpoint(minute=10.0), Checkpoint(minute=30.0)]
    return [rl, failed]


def test_table_rows_one_per_checkpoint_and_a_final_row_per_run():
    rows = table_rows(_records())
    assert [(r["impl"], r["minute"]) for r in rows] == [
        ("rlfleet-impala", "10"),
        ("rlfleet-impala", "30"),
        ("rlfleet-impala", "final"),
        ("sb3-ppo", "10"),
        ("sb3-ppo", "30"),
        ("sb3-ppo", "final"),
    ]
    final = rows[2]
    assert final["return_mean"] == 20.0 and final["episodes"] == 3
    assert final["note"] == "time budget"
    assert rows[-1]["note"].startswith("child failed") and rows[-1]["env_steps"] is None
    assert format_return(8.0, 2.0, 10) == "8.0 ± 2.0 (10)"
    assert format_return(None, None, None) == "-"


def test_json_document_structure():
    payload = build_payload(
        _records(),
        game="breakout",
        budget_s=1800.0,
        minutes=[10.0, 30.0],
        eval_interval_s=60.0,
        eval_episodes=10,
        final_episodes=30,
        seeds=[0],
        overrides=["actor.num_actors=1"],
        skipped=[],
        quick=False,
        machine={"cpu_count": 2},
        sb3_torch_threads=2,
    )
    doc = json.loads(json.dumps(payload))  # serialisable as written
    assert doc["benchmark"] == "minatar" and doc["protocol"]["env"] == "MinAtar/Breakout-v1"
    assert doc["protocol"]["checkpoint_minutes"] == [10.0, 30.0]
    assert doc["protocol"]["sb3_torch_threads"] == 2
    assert doc["presets"] == {
        "rlfleet-impala": "impala-minatar-breakout",
        "rlfleet-apex": "minatar-breakout",
    }
    assert "ppo.yml" in doc["hyperparameters"]["sb3-ppo"]["source"]
    assert [r["impl"] for r in doc["runs"]] == ["rlfleet-impala", "sb3-ppo"]
    assert doc["runs"][0]["checkpoints"][0]["eval_return_mean"] == 8.0
    assert len(doc["table"]) == 6


def test_protocol_settings_and_env_ids():
    s = rlfleet_settings("space_invaders", 3, 90.0, 10.0, 5, 7)
    assert s["env.id"] == "MinAtar/SpaceInvaders-v1" and s["run.seed"] == "3"
    assert s["run.max_seconds"] == "90.0" and s["run.total_env_steps"] == "0"
    assert s["eval.episodes"] == "5" and s["eval.final_episodes"] == "7"
    assert set(s) == set(PROTOCOL_KEYS)
    assert game_env_id("breakout") == "MinAtar/Breakout-v1"
    with pytest.raises(ValueError, match="unknown MinAtar game"):
        game_env_id("pong")
    assert EVAL_SEED_OFFSET == 77


def test_observation_scaling_matches_the_networks_input_scaling():
    torch = pytest.importorskip("torch")
    obs = np.array([[[0, 255], [255, 0]]], np.uint8)
    scaled = scale_observation(obs)
    assert scaled.dtype == np.float32 and set(np.unique(scaled)) == {0.0, 1.0}
    assert np.array_equal(scaled, torch.from_numpy(obs).float().mul_(1.0 / 255.0).numpy())


def test_greedy_policy_adapter_feeds_float_observations_and_refuses_exploration():
    seen = []

    class FakeModel:
        def predict(self, obs, deterministic):
            seen.append((obs.dtype, float(obs.max()), deterministic))
            return np.array([2, 0]), None

    policy = GreedySB3Policy(FakeModel())
    obs = np.full((2, 4, 10, 10), 255, np.uint8)
    actions = policy.act(obs, np.zeros(2))
    assert actions.dtype == np.int64 and actions.tolist() == [2, 0]
    assert seen == [(np.float32, 1.0, True)]
    with pytest.raises(ValueError, match="greedily"):
        policy.act(obs, np.full(2, 0.05))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--set", "run.max_seconds=5"], "protocol fixes"),
        (["--checkpoints", "10", "40"], "--checkpoints must lie"),
        (["--impls", "rlfleet-impala,sb3-dqn"], "unknown --impls"),
        (["--game", "pong"], "unknown MinAtar game"),
    ],
)
def test_bad_arguments_exit_2_before_running_anything(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
