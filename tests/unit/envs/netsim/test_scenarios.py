"""Scenario registry, samplers, TOML loading, metrics helpers and the CLI (fast parts)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rlfleet.cli.netsim import main
from rlfleet.envs.netsim.evaluate import jain, p95
from rlfleet.envs.netsim.scenarios import (
    CALIBRATED,
    PANTHEON,
    SAMPLERS,
    get_scenario,
    load_scenarios,
    resolve_scenarios,
    sample_scenario,
)
from rlfleet.errors import ConfigError

# (rate Mbit/s, one-way ms, loss, queue, BDP in 1500 B packets) from the reference table
TABLE = {
    "nepal_to_aws_india": (0.57, 28, 0.0477, 14, 2.7),
    "mexico_cellular_to_aws_california": (2.64, 88, 0.0, 130, 38.7),
    "aws_brazil_to_colombia_cellular": (3.04, 130, 0.0, 426, 65.9),
    "india_to_aws_india": (100.42, 27, 0.0, 173, 452),
    "aws_korea_to_china": (77.72, 51, 0.0006, 94, 661),
    "aws_california_to_mexico": (114.68, 45, 0.0, 450, 860),
}


def test_eighteen_scenarios_in_reference_order() -> None:
    assert len(PANTHEON) == 18 and len(CALIBRATED) == 6
    assert get_scenario("1").name == "nepal_to_aws_india"
    assert get_scenario("18").name == "buffer_bdp"
    for name, (rate, d, loss, q, _) in TABLE.items():
        sc = PANTHEON[name]
        assert sc.uplink.rate_mbps == rate and sc.delay_ms == d
        assert sc.loss_up == loss and sc.up_queue_packets == q
    # constant paths: BDP as in the table (1504 B opportunities vs 1500 B labels: within 1 %)
    for name in CALIBRATED[3:]:
        assert PANTHEON[name].bdp_packets() == pytest.approx(TABLE[name][4], rel=0.01)
    pol = PANTHEON["policer_60mbps_100ms"]
    assert pol.up_queue_packets == 1 and pol.down_queue_packets == 1 and pol.base_rtt_ms == 100
    assert PANTHEON["buffer_bdp_div_10"].up_queue_bytes == 9000
    with pytest.raises(ConfigError, match="valid: nepal_to_aws_india"):
        get_scenario("mars")


def test_samplers_respect_their_ranges() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        sc = sample_scenario("random_traces_0_5", rng)
        assert 5 <= sc.delay_ms <= 200 and 10 <= sc.up_queue_packets <= 1000
        assert sc.loss_up == 0 or 0.01 <= sc.loss_up <= 0.05
        assert 0.5 <= sc.uplink.scale <= 2.0
        hi = sample_scenario("random_traces_3_5", rng)
        assert hi.uplink.kind == "constant" and hi.loss_up == 0
    assert set(SAMPLERS) >= {"random_traces_0_5", "random_traces_0_5_narrow", "random_traces_3_5"}


def test_toml_scenarios(tmp_path) -> None:
    (tmp_path / "my.trace").write_text("1\n1\n2\n")
    f = tmp_path / "paths.toml"
    f.write_text(
        """
[[scenario]]
name = "lte"
delay_ms = 20
loss_up = 0.01
[scenario.uplink]
kind = "trace"
path = "my.trace"
queue_bytes = 30000
[scenario.downlink]
kind = "constant"
rate_mbps = 12
queue_packets = 5

[[scenario]]
name = "aggr"
[scenario.uplink]
kind = "poisson"
rate_mbps = 6
warmup_ms = 1000
"""
    )
    a, b = load_scenarios(f)
    assert a.name == "lte" and a.up_queue_bytes == 30000 and a.down_queue_packets == 5
    assert a.capacity_mbps == pytest.approx(1.5 * 1504 * 8 / 1000)
    assert b.uplink.warmup_ms == 1000 and b.downlink is None
    assert [s.name for s in resolve_scenarios([str(f), "calibrated"])][:3] == [
        "lte",
        "aggr",
        "nepal_to_aws_india",
    ]
    bad = tmp_path / "bad.toml"
    bad.write_text('[scenario]\nname = "x"\nrtt = 3\n[scenario.uplink]\nkind = "constant"\n')
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['rtt'\]; valid"):
        load_scenarios(bad)
    bad.write_text('[scenario]\nname = "x"\n[scenario.uplink]\nkind = "wave"\n')
    with pytest.raises(ConfigError, match="valid: constant, poisson, trace"):
        load_scenarios(bad)


def test_metric_helpers_against_naive() -> None:
    x = np.random.default_rng(0).exponential(size=101)
    assert p95(x) == sorted(x)[95]  # nearest rank on 101 points: index round(0.95 * 100) = 95
    assert jain([1, 1, 1]) == pytest.approx(1.0)
    assert jain([1, 0, 0]) == pytest.approx(1 / 3)
    assert jain([2, 1]) == pytest.approx(9 / 10)


def test_cli_eval_writes_outputs_and_uses_policy_loader(tmp_path, capsys) -> None:
    calls = []

    def loader(path: str):
        calls.append(path)
        return lambda obs: 3  # always +10

    out = tmp_path / "ev"
    code = main(
        [
            "eval",
            "--scenarios",
            "buffer_bdp",
            "--schemes",
            "cubic,fixed:20,checkpoint:/x/ck",
            "--duration",
            "2",
            "--seeds",
            "0,1",
            "--out",
            str(out),
            "--no-progress",
        ],
        policy_loader=loader,
    )
    assert code == 0 and calls == ["/x/ck"]
    doc = json.loads((out / "results.json").read_text())
    assert len(doc["runs"]) == 6 and len(doc["summary"]) == 3
    assert (out / "summary.csv").read_text().startswith("scenario,scheme,runs,throughput_mbps")
    assert (out / "buffer_bdp.png").stat().st_size > 1000
    assert main(["eval", "--schemes", "checkpoint:/x", "--out", str(out), "--no-progress"]) == 2
    assert "policy loader" in capsys.readouterr().err
    assert main(["eval", "--schemes", "tahoe", "--out", str(out), "--no-progress"]) == 2
    assert main(["scenarios"]) == 0


def test_cli_eval_sampled_schemes_use_the_sampling_loader(tmp_path, capsys) -> None:
    greedy, sampling = [], []

    def loader(calls):
        def load(path: str):
            calls.append(path)
            return lambda obs: 3

        return load

    args = ["eval", "--scenarios", "buffer_bdp", "--duration", "1", "--no-progress"]
    out = str(tmp_path / "ev")
    code = main(
        [*args, "--schemes", "sampled:/x/s,checkpoint:/x/g", "--out", out],
        policy_loader=loader(greedy),
        sampling_loader=loader(sampling),
    )
    assert code == 0 and greedy == ["/x/g"] and sampling == ["/x/s"]
    schemes = {
        r["scheme"] for r in json.loads((tmp_path / "ev" / "results.json").read_text())["summary"]
    }
    assert schemes == {"sampled:/x/s", "checkpoint:/x/g"}
    assert main([*args, "--schemes", "sampled:/x", "--out", out], policy_loader=loader([])) == 2
    assert "sampling_loader" in capsys.readouterr().err
