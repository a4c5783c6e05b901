"""Sequence-level RL over the Redis data plane: SCST actors decode and push their sampled
outputs through Redis, the learner pulls them and publishes parameters there, and the run's
keys are gone afterwards (the local-transport flow is in test_scst.py)."""

from __future__ import annotations

import json

import pytest
from test_scst import sets, tiny_g2p

from rlfleet.cli.main import main
from rlfleet.fleet.metrics import read_metrics
from rlfleet.transport.redis import connect

pytestmark = pytest.mark.e2e


def test_scst_trains_over_redis_and_leaves_no_keys(tmp_path, redis_server):
    common = tiny_g2p(tmp_path)
    xe = tmp_path / "xe"
    argv = ["train", "g2p-xe", "--run-dir", str(xe), "--quiet", "--in-process"]
    assert main([*argv, *sets([*common, "learner.max_updates=10", "learner.batch_size=8"])]) == 0

    scst = tmp_path / "scst"
    argv = ["train", "g2p-scst", "--run-dir", str(scst), "--quiet"]
    argv += ["--redis", redis_server.url, "--run", "scst-e2e"]
    overrides = [*common, f"scst.init_from={xe}", "learner.max_updates=8", "learner.batch_size=2",
                 "env.envs_per_actor=10"]  # fmt: skip
    assert main([*argv, *sets(overrides)]) == 0
    final = json.loads((scst / "final_eval.json").read_text())
    assert final["transport"] == "redis" and final["redis_run"] == "scst-e2e"
    assert final["updates"] == 8 and final["env_steps"] > 0 and final["final_returns"]
    assert final["transport_dropped"] == 0
    assert read_metrics(scst)["seq/reward_greedy"], "the learner's SCST metrics arrived"
    assert connect(redis_server.url).keys("*") == [], "the run's keys are deleted at its end"
