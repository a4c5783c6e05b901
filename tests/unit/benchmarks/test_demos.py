"""``rlfleet bench demos``: its summary of DQfD vs Ape-X DQN runs."""

from __future__ import annotations

from benchmarks.demos import summarise


def test_bench_demos_summary_counts_unreached_thresholds_as_beyond_the_budget():
    def rec(variant, at, final):
        return {
            "variant": variant,
            "budget_env_steps": 1000,
            "threshold_at_env_steps": at,
            "final_return_mean": final,
        }

    records = [rec("dqn", None, -200.0), rec("dqn", 900, -150.0), rec("dqn", None, -200.0)]
    records += [rec("dqfd", 100, -110.0), rec("dqfd", 300, -125.0), rec("dqfd", 200, -105.0)]
    s = summarise(records, demo_avg=-120.0)
    assert s["dqn"]["reached"] == 1 and s["dqn"]["median_env_steps_to_threshold"] is None
    assert s["dqn"]["median_is_lower_bound"]
    assert s["dqfd"]["median_env_steps_to_threshold"] == 200
    assert not s["dqfd"]["median_is_lower_bound"]
    assert s["dqfd"]["final_above_demonstrator"] == 2 and s["dqfd"]["median_final_return"] == -110.0
