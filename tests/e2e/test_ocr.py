"""Scene-text recognition end to end on a tiny word file: CTC training (in-process), SCST from
its checkpoint on the fleet (an actor reads images column by column, the learner updates), then
``rlfleet eval-ocr`` (fp32, beam and int8 rows, the PNG grid)."""

from __future__ import annotations

import json

import pytest

from rlfleet.agents.scst.ocr_int8 import DEFAULT_INT8
from rlfleet.cli.main import main
from rlfleet.fleet.metrics import read_metrics

pytestmark = pytest.mark.e2e

WORDS = ["cat", "cab", "bat", "tab", "act", "tack", "back", "abba", "bab", "tat", "kat", "tic"]


def sets(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def test_ctc_then_scst_then_eval_ocr(tmp_path, capsys):
    words = tmp_path / "words.txt"
    words.write_text("\n".join(WORDS) + "\n")
    common = [
        f'env.kwargs={{words = "{words}", held_out_fraction = 0.25, height = 32, '
        "width_factor = 4, test_images = 8}",
        "scst.dev_words=8",
        "scst.dev_interval_s=0.5",
        "eval.episodes=4",
        "eval.final_episodes=8",
        "eval.interval_s=0.5",
        "run.log_interval_s=0.25",
        "run.max_seconds=60",
    ]
    ctc = tmp_path / "ctc"
    argv = ["train", "ocr-ctc", "--run-dir", str(ctc), "--quiet", "--in-process"]
    assert main([*argv, *sets([*common, "learner.max_updates=6", "learner.batch_size=4"])]) == 0
    final = json.loads((ctc / "final_eval.json").read_text())
    assert final["updates"] == 6 and final["stop_reason"] == "update budget"
    metrics = read_metrics(ctc)
    assert metrics["seq/dev_cer"] and metrics["seq/dev_word_acc"] and metrics["learner/loss"]

    scst = tmp_path / "scst"
    argv = ["train", "ocr-scst", "--run-dir", str(scst), "--quiet"]
    overrides = [*common, f"scst.init_from={ctc}", "learner.max_updates=3", "learner.batch_size=2",
                 "env.envs_per_actor=10"]  # fmt: skip
    assert main([*argv, *sets(overrides)]) == 0
    final = json.loads((scst / "final_eval.json").read_text())
    assert final["updates"] == 3 and final["env_steps"] > 0 and final["final_returns"]
    assert all(-1.0 <= r <= 0.0 for r in final["final_returns"])
    metrics = read_metrics(scst)
    assert metrics["seq/reward_greedy"] and metrics["seq/decoded_per_s"]

    capsys.readouterr()
    assert main(["eval-ocr", str(scst), "--beam", "3", "--examples", "4"]) == 0
    out = capsys.readouterr().out
    for row in ("greedy", "beam3", "int8 ", "int8_histogram", "int8_minmax"):
        assert row in out
    result = json.loads((scst / "eval_ocr.json").read_text())
    assert result["int8"]["setting"] == DEFAULT_INT8  # the default int8 row, recipe rows kept
    assert result["int8_histogram_channel"]["setting"] == "histogram_channel"
    assert result["images"] == 8 and 0.0 <= result["greedy"]["word_acc"] <= 1.0
    assert (scst / "eval_ocr.png").stat().st_size > 0
