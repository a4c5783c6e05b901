"""The preset rows of the side-by-side benchmarks (``--presets``) and the Pendulum protocol:
rows named per preset, ratios against every rlfleet row, protocol keys refused, unknown presets
named with the valid ones."""

from __future__ import annotations

import pytest

from benchmarks.cartpole.cli import check_presets
from benchmarks.cartpole.records import RunRecord, SolveTracker, finalize
from benchmarks.cartpole.report import is_rlfleet, ratios_by_base, rlfleet_impl, summarise
from benchmarks.pendulum import cli as pendulum_cli
from benchmarks.pendulum.protocol import PROTOCOL_KEYS, SOLVE_CONSECUTIVE, SOLVE_THRESHOLD

pytestmark = pytest.mark.unit


def test_preset_rows_keep_the_historical_name_for_the_default():
    assert rlfleet_impl("cartpole") == "rlfleet"
    assert rlfleet_impl("ppo-cartpole") == "rlfleet:ppo-cartpole"
    assert rlfleet_impl("ppo-pendulum", default="") == "rlfleet:ppo-pendulum"
    assert is_rlfleet("rlfleet") and is_rlfleet("rlfleet:ppo-cartpole")
    assert not is_rlfleet("sb3-ppo")


def test_unknown_presets_are_named(capsys):
    assert check_presets(["ppo-cartpole", "cartpole", "ppo-cartpole"]) == [
        "ppo-cartpole",
        "cartpole",
    ]
    assert check_presets(["nope"]) is None
    assert "unknown --presets ['nope']; valid: " in capsys.readouterr().err


def _solved(impl: str, t: float) -> RunRecord:
    return finalize(
        RunRecord(impl, 0, cap_s=100.0, eval_s=0.0 if "sb3" in impl else None), 1000 + t, 1000
    )


def test_ratios_against_every_rlfleet_row():
    s = summarise(
        [_solved("rlfleet", 20.0), _solved("rlfleet:ppo-cartpole", 10.0), _solved("sb3-ppo", 40.0)]
    )
    by_base = ratios_by_base(s, 100.0)
    assert set(by_base) == {"rlfleet", "rlfleet:ppo-cartpole"}
    assert by_base["rlfleet:ppo-cartpole"]["sb3-ppo"]["headline"] == 4.0
    assert by_base["rlfleet"]["rlfleet:ppo-cartpole"]["headline"] == 0.5


def test_pendulum_protocol_is_minus_200_twice_and_owns_its_keys(capsys):
    tracker = SolveTracker(SOLVE_THRESHOLD, SOLVE_CONSECUTIVE)
    assert [tracker.update(m) for m in (-190.0, -250.0, -199.0, -200.0)] == [False] * 3 + [True]
    assert "eval.solve_threshold" in PROTOCOL_KEYS and "env.randomize" in PROTOCOL_KEYS
    assert pendulum_cli.main(["--set", "eval.solve_threshold=-500"]) == 2
    assert "the benchmark protocol fixes" in capsys.readouterr().err
    assert pendulum_cli.main(["--presets", "nope"]) == 2
