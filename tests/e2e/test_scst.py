"""Sequence-level RL end to end on a tiny TSV corpus: XE pre-training, then SCST from its
checkpoint on the fleet (actors decode, the learner updates), then ``rlfleet eval-seq``."""

from __future__ import annotations

import json

import pytest

from rlfleet.cli.main import main
from rlfleet.fleet.metrics import read_metrics

pytestmark = pytest.mark.e2e

WORDS = ["cat K AE T", "cab K AE B", "bat B AE T", "tab T AE B", "act AE K T", "tack T AE K",
         "back B AE K", "abba AE B AH", "bab B AE B", "tat T AE T", "kat K AE T", "cat K AH T",
         "cac K AE K", "bac B AE K", "tac T AE K", "abb AE B"]  # fmt: skip


def sets(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def tiny_g2p(tmp_path) -> list[str]:
    """Write the tiny corpus under ``tmp_path``; the overrides every run on it takes."""
    corpus = tmp_path / "tiny.tsv"
    corpus.write_text("".join(f"{w.split()[0]}\t{' '.join(w.split()[1:])}\n" for w in WORDS))
    return [
        f'env.kwargs={{corpus = "{corpus}", dev_fraction = 0.25, test_fraction = 0.25}}',
        "model.embed=8",
        "model.hidden=16",
        "scst.dev_words=4",
        "scst.dev_interval_s=0.5",
        "eval.episodes=4",
        "eval.final_episodes=4",
        "eval.interval_s=0.5",
        "run.log_interval_s=0.25",
        "run.max_seconds=60",
    ]


def test_xe_then_scst_then_eval_seq(tmp_path, capsys):
    common = tiny_g2p(tmp_path)
    xe = tmp_path / "xe"
    argv = ["train", "g2p-xe", "--run-dir", str(xe), "--quiet", "--in-process"]
    assert main([*argv, *sets([*common, "learner.max_updates=30", "learner.batch_size=8"])]) == 0
    final = json.loads((xe / "final_eval.json").read_text())
    assert final["updates"] == 30 and final["stop_reason"] == "update budget"
    assert read_metrics(xe)["seq/dev_per"], "dev PER curve"

    scst = tmp_path / "scst"
    argv = ["train", "g2p-scst", "--run-dir", str(scst), "--quiet"]
    overrides = [*common, f"scst.init_from={xe}", "learner.max_updates=10", "learner.batch_size=2",
                 "env.envs_per_actor=10"]  # fmt: skip
    assert main([*argv, *sets(overrides)]) == 0
    final = json.loads((scst / "final_eval.json").read_text())
    assert final["updates"] == 10 and final["env_steps"] > 0 and final["final_returns"]
    metrics = read_metrics(scst)
    assert metrics["seq/reward_greedy"] and metrics["seq/decoded_per_s"]
    saved = json.loads((scst / "config.toml").parent.joinpath("final_eval.json").read_text())
    assert saved["placement"] != "threads"

    capsys.readouterr()
    assert main(["eval-seq", str(scst), "--beam", "3", "--examples", "2"]) == 0
    out = capsys.readouterr().out
    assert "test   beam3" in out and "examples (dev):" in out
    result = json.loads((scst / "eval_seq.json").read_text())
    assert 0 <= result["splits"]["test"]["greedy"]["per"]
    assert (scst / "split" / "test.txt").read_text().split()
