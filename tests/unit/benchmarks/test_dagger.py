"""``rlfleet bench dagger``: labels needed over the budget ladder and the per-budget summary."""

from __future__ import annotations

from benchmarks.dagger import labels_needed, summarise


def run(method: str, budget: int, seed: int, solved: bool, final: float = 0.0) -> dict:
    return {
        "env": "cartpole",
        "method": method,
        "budget": budget,
        "seed": seed,
        "solved": solved,
        "final_return_mean": final,
        "seconds_to_solve": 5.0 if solved else None,
        "labels_to_solve": budget if solved else None,
    }


def test_labels_needed_is_the_smallest_budget_from_which_every_run_solved():
    ladder = [run("bc", 100, 0, False), run("bc", 250, 0, True), run("bc", 500, 0, False)]
    ladder += [run("bc", 1000, 0, True), run("bc", 5000, 0, True)]
    assert labels_needed(ladder) == 1000, "250 solved once, but 500 did not"
    assert labels_needed([run("bc", 100, 0, True), run("bc", 5000, 0, False)]) is None


def test_summary_medians_count_unsolved_seeds_as_beyond_the_ladder():
    records = []
    for seed, needed in ((0, 250), (1, 500), (2, None)):
        for budget in (100, 250, 500):
            solved = needed is not None and budget >= needed
            records.append(run("dagger", budget, seed, solved, final=500.0 if solved else 90.0))
    summary = summarise(records)
    (needed,) = summary["labels_needed"]
    assert needed["labels_needed_per_seed"] == {0: 250, 1: 500, 2: None}
    assert needed["median_labels_needed"] == 500 and needed["median_is_lower_bound"]
    by_budget = {r["budget"]: r for r in summary["rows"]}
    assert by_budget[100]["solved"] == 0 and by_budget[100]["median_seconds_to_solve"] is None
    assert by_budget[500]["solved"] == 2 and by_budget[500]["median_final_return"] == 500.0
