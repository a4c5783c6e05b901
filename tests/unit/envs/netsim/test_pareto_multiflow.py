"""netsim eval's Pareto view (dominance, the target check, one PNG), shared-bottleneck runs of
learned and classic flows, the held-out set, and policies evaluated in their training setup."""

from __future__ import annotations

import math

import pytest

from rlfleet.envs.netsim.evaluate import (
    EvalConfig,
    evaluate,
    run_policy,
    run_shared,
    write_results,
)
from rlfleet.envs.netsim.pareto import dominance, dominates
from rlfleet.envs.netsim.scenarios import CALIBRATED, get_scenario, resolve_scenarios

pytestmark = pytest.mark.unit


def _row(scheme: str, tput: float, p95: float, loss: float = 0.0) -> dict:
    return {
        "scenario": "s",
        "scheme": scheme,
        "throughput_mbps": tput,
        "delay_p95_ms": p95,
        "loss": loss,
    }


def test_dominance_and_the_target_by_hand() -> None:
    assert dominates(_row("a", 10, 50), _row("b", 9, 50))
    assert not dominates(_row("a", 10, 50), _row("b", 10, 50))  # equal: neither
    assert not dominates(_row("a", 10, 50), _row("b", 11, 60))  # a trade-off
    rows = [
        _row("cubic", 10.0, 100.0, 0.01),
        _row("bbr", 10.0, 80.0, 0.03),
        _row("copa", 6.0, 40.0, 0.0),
        _row("agent", 8.5, 60.0, 0.015),  # undominated, 85 % of 10, loss under 2 %
        _row("timid", 5.0, 40.0, 0.0),  # dominated by copa
        _row("lossy", 9.0, 50.0, 0.05),  # undominated but loss over max(2 %, 0 + 1)
        _row("agent+cubic", 10.0, 90.0, 0.0),  # shared runs are not judged here
    ]
    dom = {r["scheme"]: r for r in dominance(rows)}
    assert "agent+cubic" not in dom
    assert dom["cubic"]["dominated_by"] == ["bbr"] and dom["bbr"]["dominates"] == ["cubic"]
    assert dom["agent"]["meets_target"] and dom["agent"]["tput_frac_best_classic"] == 0.85
    assert not dom["timid"]["meets_target"] and dom["timid"]["dominated_by"] == ["copa"]
    assert not dom["lossy"]["meets_target"] and dom["lossy"]["undominated_by_classic"]
    assert "meets_target" not in dom["copa"]


def test_shared_bottleneck_runs_learned_and_classic_flows() -> None:
    sc = get_scenario("buffer_bdp")
    greedy = lambda obs: 3  # noqa: E731  (+10 packets every window: takes the link)
    m = run_shared(sc, [greedy, "cubic"], duration_s=6.0, interval_s=2.0)
    assert len(m["flows"]) == 2 and 0.5 <= m["jain"] <= 1.0
    assert m["flows"][0]["throughput_mbps"] > m["flows"][1]["throughput_mbps"]
    two = run_shared(sc, [greedy, greedy], duration_s=6.0, interval_s=2.0)
    assert len(two["flows"]) == 2 and not math.isnan(two["jain"])
    assert two["throughput_mbps"] == pytest.approx(11.8, rel=0.05)


def test_eval_writes_the_pareto_png_and_dominance(tmp_path) -> None:
    greedy = lambda obs: 3  # noqa: E731
    cfg = EvalConfig(
        scenarios=[get_scenario("nepal_to_aws_india")],
        schemes=["cubic", "copa", "agent", "agent+cubic"],
        duration_s=4.0,
        seeds=[0, 1],
        interval_s=1.0,
        policies={"agent": greedy},
    )
    rows = evaluate(cfg)
    paths = write_results(rows, tmp_path, {})
    assert (tmp_path / "pareto.png").stat().st_size > 10_000
    assert (tmp_path / "dominance.csv").read_text().count("\n") == 4  # header + 3 single-flow
    assert len(rows) == 8 and any("meets_target" in r for r in paths["dominance_rows"])


def test_heldout_is_the_twelve_others() -> None:
    held = resolve_scenarios(["heldout"])
    assert len(held) == 12 and not {s.name for s in held} & set(CALIBRATED)


def test_a_policy_is_evaluated_in_its_training_setup() -> None:
    class Policy:
        env_kwargs = {"receiver": "mvfst", "reward_kind": "orca", "scenario": "x"}

        def __call__(self, obs):
            assert obs.shape == (220,)
            return 0

    sc = get_scenario("india_to_aws_india")
    mvfst = run_policy(sc, Policy(), duration_s=1.0)
    plain = run_policy(sc, lambda obs: 0, duration_s=1.0)
    # ACK every 10 instead of 2: the same data with far fewer ACKs, so other observations
    assert mvfst["episode_return"] != plain["episode_return"]
