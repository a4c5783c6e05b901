"""env.kwargs checked against an options dataclass (sequence and OCR tasks)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from rlfleet.envs.options import checked_kwargs
from rlfleet.errors import ConfigError

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Opts:
    rate: float = 0.5
    count: int = 3
    name: str = "x"


def test_ints_widen_to_floats_and_valid_keys_pass():
    assert checked_kwargs(Opts, {"rate": 1, "count": 4}, "a test task") == {"rate": 1.0, "count": 4}
    assert checked_kwargs(Opts, None, "a test task") == {}


def test_unknown_keys_are_named_with_the_valid_ones():
    with pytest.raises(ConfigError, match=r"\['nope'\] are unknown for a test task; valid: rate"):
        checked_kwargs(Opts, {"nope": 1}, "a test task")


@pytest.mark.parametrize("key,value", [("count", True), ("count", 1.5), ("name", 3)])
def test_wrong_types_name_the_key_and_value(key, value):
    with pytest.raises(ConfigError, match=rf"env.kwargs.{key} must be"):
        checked_kwargs(Opts, {key: value}, "a test task")


def test_lockstep_groups_only_while_training_with_several_envs():
    from rlfleet.envs.options import lockstep_group
    from rlfleet.errors import EnvError

    assert lockstep_group("T", 8, 4, True, "image") == 4
    assert lockstep_group("T", 8, 4, False, "image") == 1  # evaluation decodes each once
    assert lockstep_group("T", 1, 4, True, "image") == 1  # a probe
    with pytest.raises(EnvError, match=r"envs per actor \(6\) must be a multiple.*each source"):
        lockstep_group("T", 6, 4, True, "source")
