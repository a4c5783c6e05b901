"""Controllers by name: ``make_controller`` and its errors."""

from __future__ import annotations

import pytest

from rlfleet.envs.netsim.cc.base import FixedCwnd
from rlfleet.envs.netsim.cc.delay_based import Vegas
from rlfleet.envs.netsim.cc.registry import make_controller
from rlfleet.errors import ConfigError


def test_make_controller_errors() -> None:
    with pytest.raises(ConfigError, match="valid: newreno"):
        make_controller("reno2")
    assert isinstance(make_controller("fixed:12"), FixedCwnd)
    assert isinstance(make_controller("vegas"), Vegas)
    with pytest.raises(ConfigError, match="fixed:N"):
        make_controller("fixed:abc")
