"""``rlfleet bench export``: both runtimes timed at each batch size, the export checked first."""

from __future__ import annotations

import json

import pytest

from benchmarks.export import main


@pytest.mark.usefixtures("one_torch_thread")
def test_bench_export_times_torch_and_onnxruntime(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--repeats", "8", "--warmup", "2", "--batches", "1,4", "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["export"]["actions_equal"] + payload["export"]["near_ties"] == 1000
    assert [row["batch"] for row in payload["rows"]] == [1, 4]
    for row in payload["rows"]:
        for runtime in ("torch_policy", "torch_module", "onnxruntime"):
            t = row[runtime]
            assert 0 < t["q1_us"] <= t["median_us"] <= t["q3_us"]
    assert "onnxruntime" in capsys.readouterr().out
