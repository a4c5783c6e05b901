"""``rlfleet evaluator`` against a real redis-server, with the learner host played by the test:
the run's config and a learner claim written by hand, parameters published with RedisParams."""

from __future__ import annotations

import csv
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rlfleet.cli.presets import build_config
from rlfleet.config import to_dict
from rlfleet.errors import ConfigError, TransportError
from rlfleet.fleet.hosts.evaluator import RemoteEvaluator
from rlfleet.models import build_q_network
from rlfleet.transport.redis import Heartbeat, RedisParams, RunStatus, alive_members, connect
from rlfleet.transport.redis.keys import key

RUN = "eval-run"


class FakeLearnerHost:
    """What `rlfleet learner` leaves in Redis for other hosts: config, claim, parameters."""

    def __init__(self, url: str) -> None:
        self.client = connect(url)
        self.config = build_config("cartpole", ["model.hidden=[16, 16]", "eval.episodes=3"])
        self.client.set(key(RUN, "config"), json.dumps(to_dict(self.config)))
        self.claim = Heartbeat(self.client, RUN, "launcher", group="learners")
        self.claim.beat(force=True)
        net = build_q_network((4,), 2, torso="auto", hidden=(16, 16), dueling=True)
        self.size = sum(p.numel() for p in net.parameters())
        self.params = RedisParams(self.client, RUN)
        self.rng = np.random.default_rng(0)

    def publish(self, version: int) -> None:
        self.params.publish(self.rng.normal(0, 0.1, self.size).astype(np.float32), version)


def _start(evaluator: RemoteEvaluator) -> tuple[threading.Thread, dict[str, Any]]:
    holder: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: holder.setdefault("result", evaluator.run(wait_s=20)), daemon=True
    )
    thread.start()
    return thread, holder


def _rows(out: Path) -> list[dict[str, str]]:
    path = out / "evaluations.csv"
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_evaluates_each_new_version_and_ends_on_the_stop_flag(tmp_path, redis_server):
    host = FakeLearnerHost(redis_server.url)
    out = tmp_path / "evals"
    evaluator = RemoteEvaluator(
        redis_server.url, RUN, out, interval_s=0.2, episodes=2, learner_grace_s=30.0
    )
    thread, holder = _start(evaluator)  # starts before the first publish: waits for it
    time.sleep(0.5)
    assert _rows(out) == [], "no parameters yet: nothing to evaluate"
    host.publish(1)
    assert _wait_for(lambda: len(_rows(out)) >= 1, 30), "version 1 was never evaluated"
    client = connect(redis_server.url)
    assert alive_members(client, RUN, "evaluators"), "the evaluator keeps a heartbeat"
    time.sleep(0.6)  # several intervals, no new version: no new evaluation
    assert len(_rows(out)) == 1
    host.publish(2)
    assert _wait_for(lambda: len(_rows(out)) >= 2, 30), "version 2 was never evaluated"

    RunStatus(client, RUN).request_stop("test over")
    thread.join(timeout=20)
    assert not thread.is_alive(), "the evaluator did not end on the run's stop flag"
    result = holder["result"]
    assert result.stop_reason == "run stopped"

    rows = _rows(out)
    assert [int(r["version"]) for r in rows] == [1, 2]
    for row in rows:
        assert int(row["episodes"]) == 2
        assert float(row["return_mean"]) > 0 and float(row["length_mean"]) > 0
    saved = json.loads((out / "evaluations.json").read_text())
    assert saved["run"] == RUN and saved["env_id"] == "CartPole-v1"
    assert saved["stop_reason"] == "run stopped"
    assert [r["version"] for r in saved["evaluations"]] == [1, 2]
    metrics = (out / "metrics.csv").read_text()
    assert "eval/return_mean" in metrics and "params/version" in metrics
    assert 'id = "CartPole-v1"' in (out / "config.toml").read_text()
    assert alive_members(client, RUN, "evaluators") == [], "it left the evaluators group"
    # read-only on the run: it wrote nothing but its own (now gone) heartbeat
    assert host.params.latest_version() == 2
    assert not [k for k in client.keys("*") if b"evaluators" in k]


def test_ends_when_the_learner_is_gone_without_a_stop_flag(tmp_path, redis_server):
    host = FakeLearnerHost(redis_server.url)
    host.publish(1)
    out = tmp_path / "evals"
    evaluator = RemoteEvaluator(
        redis_server.url, RUN, out, interval_s=0.2, episodes=1, learner_grace_s=0.5
    )
    thread, holder = _start(evaluator)
    assert _wait_for(lambda: len(_rows(out)) >= 1, 30)
    host.claim.leave()  # a learner host that vanished, e.g. its keys deleted at the end
    thread.join(timeout=20)
    assert not thread.is_alive()
    assert holder["result"].stop_reason == "no learner"
    assert json.loads((out / "evaluations.json").read_text())["stop_reason"] == "no learner"


def test_waits_for_a_learner_and_refuses_bad_arguments(tmp_path, redis_server):
    with pytest.raises(TransportError, match="no live learner"):
        RemoteEvaluator(redis_server.url, RUN, tmp_path / "a").run(wait_s=0.5)
    with pytest.raises(ConfigError, match="interval"):
        RemoteEvaluator(redis_server.url, RUN, tmp_path / "b", interval_s=0)
    with pytest.raises(ConfigError, match="valid key part"):
        RemoteEvaluator(redis_server.url, "bad name", tmp_path / "c")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "evaluations.csv").write_text("taken")
    with pytest.raises(ConfigError, match="already holds"):
        RemoteEvaluator(redis_server.url, RUN, tmp_path / "d")


def test_rows_carry_the_counters_the_learner_host_publishes(tmp_path, redis_server):
    from rlfleet.fleet.redis_run import RedisRun

    host = FakeLearnerHost(redis_server.url)
    host.claim.leave()  # the real launcher's hold on the run takes the claim instead
    run = RedisRun(redis_server.url, RUN, json.dumps(to_dict(host.config)), keep_keys=True)
    run.COUNTERS_INTERVAL_S = 0.3
    status = RunStatus(connect(redis_server.url), RUN)
    assert run.publish_counters(env_steps=1200, updates=34, learner_version=1)
    # rate-limited: the launcher calls it on every beat, Redis sees one write per interval
    assert not run.publish_counters(env_steps=1300, updates=35, learner_version=1)
    counters = status.read()
    assert counters is not None and counters["env_steps"] == "1200"
    host.publish(1)
    out = tmp_path / "evals"
    evaluator = RemoteEvaluator(
        redis_server.url, RUN, out, interval_s=0.2, episodes=1, learner_grace_s=30.0
    )
    thread, holder = _start(evaluator)
    assert _wait_for(lambda: len(_rows(out)) >= 1, 30)
    time.sleep(0.35)
    assert run.publish_counters(env_steps=5000, updates=400, learner_version=2)
    host.publish(2)
    assert _wait_for(lambda: len(_rows(out)) >= 2, 30)
    run.publish_counters(env_steps=6000, updates=480, learner_version=2)  # held back...
    assert run.finish("test over") == ""  # ...and written with the stop flag
    thread.join(timeout=20)
    assert not thread.is_alive() and holder["result"].stop_reason == "run stopped"
    rows = _rows(out)
    assert [(r["version"], r["env_steps"], r["updates"]) for r in rows[:2]] == [
        ("1", "1200", "34"),
        ("2", "5000", "400"),
    ]
    final = RunStatus(connect(redis_server.url), RUN).read()
    assert final is not None and (final["env_steps"], final["updates"]) == ("6000", "480")
    assert final["learner_version"] == "2" and final["stop"] == "1"
