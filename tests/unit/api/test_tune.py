"""rlfleet tune: the space file checked before any trial, trials as runs with pruning on their
evaluations, the study resumed from SQLite, the table and the best config as a preset. The
fleet is replaced by a fake train() whose outcome is a known function of the parameters."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import rlfleet.api.training as training
from rlfleet.api.callbacks import Evaluation
from rlfleet.api.tune import load_space, tune
from rlfleet.cli.main import main
from rlfleet.cli.presets import build_config
from rlfleet.errors import ConfigError
from rlfleet.fleet.report import RunResult

pytestmark = pytest.mark.unit

SPACE = """
[learner.lr]
type = "float"
low = 1e-4
high = 1e-2
log = true

[learner.target_update_interval]
type = "int"
low = 50
high = 500
"""


def _space(tmp_path: Path, text: str = SPACE) -> Path:
    path = tmp_path / "space.toml"
    path.write_text(text)
    return path


@pytest.fixture
def fake_train(monkeypatch):
    """Solves at 10 s * (1 + |log10(lr) + 3|): fastest at lr = 1e-3; evaluations every second
    with returns climbing at that pace. Records every call."""
    calls = []

    def train(config, run_dir=None, callbacks=(), show_progress=False, **_):
        lr = config.learner.lr
        solve_s = 10.0 * (1.0 + abs(math.log10(lr) + 3.0))
        Path(run_dir).mkdir(parents=True)
        result = RunResult(run_dir=str(run_dir), stop_reason="solved")
        for second in range(3, 60, 3):  # an evaluation every 3 s
            ret = min(500.0, 500.0 * second / solve_s)
            ev = Evaluation(float(second), second * 100, second * 10, second, ret, 1.0, False)
            result.evaluations.append({"return_mean": ret})
            if any(cb.on_evaluation(ev) for cb in callbacks):
                result.stop_reason = "pruned"
                break
            if second >= solve_s:
                result.solved, result.solved_at_s = True, float(second)
                break
        result.final_return_mean = result.evaluations[-1]["return_mean"]
        result.wall_s = float(second)
        calls.append((lr, config.learner.target_update_interval, config.run.max_seconds))
        return result

    monkeypatch.setattr(training, "train", train)
    return calls


def test_study_runs_resumes_and_writes_the_best_preset(tmp_path, fake_train):
    study = tmp_path / "study"
    space = _space(tmp_path)
    first = tune("cartpole", space, 4, study_dir=study, overrides=["run.max_seconds=60"])
    assert len(fake_train) == 4 and all(c[2] == 60.0 for c in fake_train)
    own = build_config("cartpole", [])
    # trial 0: the preset's own values
    assert fake_train[0][:2] == (own.learner.lr, own.learner.target_update_interval)
    assert (study / "study.db").is_file()
    assert sorted(p.name for p in study.glob("trial-*")) == [f"trial-{i:04d}" for i in range(4)]
    lines = first.table.splitlines()
    assert "learner.lr" in lines[0] and len(lines) == 1 + 4 + 1
    # resumed from SQLite: two more trials, numbered on
    second = tune("cartpole", space, 6, study_dir=study, overrides=["run.max_seconds=60"])
    assert len(fake_train) == 6 and len(second.table.splitlines()) == 1 + 6 + 1
    best_lr = second.best_params["learner.lr"]
    solve_s = 10 * (1 + abs(math.log10(best_lr) + 3))
    assert second.best_value == pytest.approx(3 * math.ceil(solve_s / 3))  # first eval past it
    preset = build_config(second.best_preset, [])
    assert preset.learner.lr == best_lr and preset.run.max_seconds == 60.0
    assert (
        preset.learner.target_update_interval
        == second.best_params["learner.target_update_interval"]
    )
    assert "rlfleet tune of cartpole" in Path(second.best_preset).read_text()


def test_pruning_stops_trials_worse_than_the_median(tmp_path, fake_train, monkeypatch):
    # lr far from 1e-3 climbs slowly: after five startup trials some of those are pruned
    summary = tune(
        "cartpole",
        _space(tmp_path),
        9,
        study_dir=tmp_path / "s",
        seed=1,
        overrides=["run.max_seconds=30"],  # no pruning before 9 s
    )
    assert "pruned" in summary.table


@pytest.mark.parametrize(
    "text, message",
    [
        ('[learner.lrr]\ntype = "float"\nlow = 1e-4\nhigh = 1e-3\n', "learner.lrr"),
        ('[learner.lr]\ntype = "float"\nlow = -1.0\nhigh = 1e-3\n', "learner.lr"),
        ('[learner.lr]\ntype = "gauss"\nlow = 1e-4\nhigh = 1e-3\n', "type 'gauss' is unknown"),
        ('[learner.lr]\ntype = "float"\nlow = 1e-3\nhigh = 1e-4\n', "low < high"),
        ('[learner.lr]\ntype = "float"\nlow = 0.0\nhigh = 1e-3\nlog = true\n', "log = true needs"),
        ('[learner.lr]\ntype = "float"\nlo = 1e-4\nhigh = 1e-3\n', "unknown keys ['lo']"),
        ('[model.hidden]\ntype = "categorical"\nchoices = []\n', "non-empty list"),
        ('[learner.batch_size]\ntype = "int"\nlow = 1.5\nhigh = 8\n', "must be integers"),
        ("", "empty"),
    ],
)
def test_bad_spaces_are_refused_before_any_trial(tmp_path, fake_train, text, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        tune("cartpole", _space(tmp_path, text), 3, study_dir=tmp_path / "s")
    assert not fake_train and not (tmp_path / "s").exists()


def test_cli_tune_errors_and_categorical_space(tmp_path, fake_train, capsys):
    bad = _space(tmp_path, '[algo.nope]\ntype = "int"\nlow = 1\nhigh = 3\n')
    argv = ["tune", "cartpole", "--space", str(bad), "--trials", "2"]
    assert main([*argv, "--study-dir", str(tmp_path / "s")]) == 2
    assert "algo.nope" in capsys.readouterr().err and not (tmp_path / "s").exists()
    params = load_space(
        _space(tmp_path, '[model.hidden]\ntype = "categorical"\nchoices = [[32], [64, 64]]\n'),
        "cartpole",
        [],
    )
    assert params[0].values() == [[32], [64, 64]]
    ok = _space(tmp_path, SPACE)
    argv = ["tune", "cartpole", "--space", str(ok), "--trials", "2", "--study-dir"]
    assert main([*argv, str(tmp_path / "t")]) == 0
    out = capsys.readouterr().out
    assert "best config written as a preset" in out and (tmp_path / "t" / "best.toml").is_file()
