"""``rlfleet bench transport --quick``: runs against the redis-server it starts itself and
writes a complete JSON document (structure and plausibility only, no timing thresholds)."""

from __future__ import annotations

import json
import shutil

import pytest

from benchmarks.loopback_redis import LoopbackRedis
from benchmarks.transport.latency import PARAM_SIZES
from benchmarks.transport.payloads import experience_payload
from rlfleet.cli.main import main
from rlfleet.errors import RlfleetError
from rlfleet.transport.codec import decode

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None,
    reason="redis-server binary not found (apt-get install redis-server); CI installs it",
)


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and value > 0


def test_quick_bench_writes_every_section(tmp_path, capsys):
    path = tmp_path / "transport.json"
    assert main(["bench", "transport", "--quick", "--json", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "parameter fetch" in printed and "13 MB parameter fetch p99" in printed
    doc = json.loads(path.read_text())

    assert doc["benchmark"] == "transport" and doc["quick"] is True
    assert doc["machine"]["cpu_count"] >= 1 and "load_avg_end" in doc["machine"]
    assert doc["redis_server"].startswith("Redis server")

    fetch = {r["model_bytes"]: r for r in doc["param_fetch"]}
    assert sorted(fetch) == [(s // 4) * 4 for s in PARAM_SIZES]
    for row in fetch.values():
        assert row["wire_bytes"] > row["model_bytes"]  # header + the whole vector
        for k in ("p50_ms", "p99_ms", "publish_p50_ms", "version_check_p50_ms"):
            assert _positive(row[k]), (k, row)
        assert row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]

    latency = {(r["obs"], r["compress"]): r for r in doc["push_latency"]}
    assert {("vector", "raw"), ("frames", "raw")} <= set(latency)
    assert latency[("frames", "raw")]["array_bytes"] == 50 * 2 * 4 * 84 * 84 + 50 * 20
    for row in latency.values():
        assert all(_positive(row[k]) for k in ("p50_ms", "p99_ms", "encode_p50_ms", "wire_bytes"))
    for codec in ("lz4", "zstd"):
        if ("frames", codec) in latency:  # synthetic game frames compress
            assert latency[("frames", codec)]["compression_ratio"] > 2

    rows = doc["push_throughput"]
    assert {(r["obs"], r["rlfleet"]["actors"]) for r in rows} >= {("vector", 2), ("frames", 2)}
    for row in rows:
        assert _positive(row["rlfleet"]["msgs_per_s"]) and _positive(row["rlfleet"]["mb_per_s"])
        assert _positive(row["redis_py_rpush"]["msgs_per_s"])
        assert row["rlfleet"]["lost"] == 0 and row["rlfleet"]["errors"] == 0
        if doc["redis_benchmark"]:
            assert _positive(row["redis_benchmark"]["msgs_per_s"])
            assert row["redis_benchmark"]["clients"] == row["rlfleet"]["actors"]
            assert row["ratio"] > 0 and isinstance(row["target_met"], bool)

    for pull in doc["replay_pull"]:
        assert _positive(pull["learner_side_pull"]["msgs_per_s"])
        service = pull["service"]
        assert _positive(service["computed"]["wire_pull"]["msgs_per_s"])
        if pull["compress"] == "raw":  # through the real replay service
            assert service["source"] == "measured"
            assert _positive(service["measured"]["batches_per_s"])
            # one sampled batch of 64 transitions per update, as encoded by the service
            per_item = pull["wire_bytes_per_transition"]
            assert 0.5 * 64 * per_item < service["measured"]["batch_bytes"] < 2 * 64 * per_item
        else:
            assert service["source"] == "computed" and service["measured"] is None
        by_spi = {s["samples_per_insert"]: s for s in pull["per_samples_per_insert"]}
        # learner-side bytes scale as 1/spi; the service's do not depend on it
        assert by_spi[0.25]["learner_side_bytes_per_update"] == pytest.approx(
            32 * by_spi[8.0]["learner_side_bytes_per_update"], rel=1e-3
        )
        assert by_spi[0.25]["service_bytes_per_update"] == by_spi[8.0]["service_bytes_per_update"]

    targets = doc["targets"]
    assert isinstance(targets["param_fetch_met"], bool)
    assert targets["param_fetch_13mb_p99_ms"] == fetch[(PARAM_SIZES[1] // 4) * 4]["p99_ms"]


def test_payloads_are_valid_experience_messages():
    for kind, obs_shape in (("vector", (4,)), ("frames", (4, 84, 84))):
        message = decode(experience_payload(kind, "raw"), kinds={"experience"})
        assert message.arrays["obs"].shape == (50, *obs_shape)
        assert message.arrays["next_obs"].shape == (50, *obs_shape)
    frames = decode(experience_payload("frames", "raw")).arrays
    # n-step stacks: next_obs[i] is obs[i + 3]
    assert (frames["next_obs"][0] == frames["obs"][3]).all()


def test_missing_redis_server_is_a_clear_error(tmp_path):
    with pytest.raises(RlfleetError, match="redis-server not found"):
        LoopbackRedis(str(tmp_path / "no-such-redis-server"))
