"""``rlfleet bench randomization``'s argument handling (its runs train real agents: run by hand,
figures in docs/continuous.md)."""

from __future__ import annotations

import pytest

from benchmarks.randomization import _parse, parse_table

pytestmark = pytest.mark.unit


def test_training_ranges_parse_as_a_toml_inline_table():
    table = parse_table('{mass = [0.7, 1.4, "log"], length = 1.1}')
    assert table == {"mass": [0.7, 1.4, "log"], "length": 1.1}


def test_a_bad_table_names_the_value():
    with pytest.raises(SystemExit, match="mass = "):
        parse_table("{mass = }")


def test_defaults_and_refusals():
    args = _parse([])
    assert args.preset == "dpg-pendulum" and args.test_param == "mass"
    assert min(args.test_values) == 1.0 and max(args.test_values) > 1.4  # outside training
    with pytest.raises(SystemExit):
        _parse(["--episodes", "0"])


def test_bad_parameters_are_refused_before_any_training():
    from benchmarks.randomization import check_tables, main
    from rlfleet.errors import ConfigError

    args = _parse(["--test-param", "masss"])
    with pytest.raises(ConfigError, match="masss"):
        check_tables(args, parse_table(args.train_randomize))
    with pytest.raises(ConfigError, match="frobnicate"):
        main(["--train-randomize", "{frobnicate = [1, 2]}"])
