"""load_kernels leaves every compiled kernel a replay of the same fields calls loaded, in a
fresh process (where nothing had called them)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

_CODE = """
import json
import numpy as np
from rlfleet.replay import FieldSpec, FrameStackSpec, load_kernels
from rlfleet.replay import kernels as K, frames as F

def loaded():
    names = ("add_prioritized", "sample_prioritized", "update_prioritized")
    out = {n: len(getattr(K, n).signatures) for n in names}
    out["frames"] = len(F._insert.signatures)
    return out

before = loaded()
fields = {
    "obs": FrameStackSpec(stack=2, frame_shape=(3, 3)),
    "action": FieldSpec((), np.int64),
    "reward": FieldSpec((), np.float32),
    "next_obs": FrameStackSpec(stack=2, frame_shape=(3, 3)),
}
seconds = load_kernels(fields)
print(json.dumps({"before": before, "after": loaded(), "seconds": seconds}))
"""


def test_load_kernels_loads_the_prioritized_and_frame_kernels() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _CODE], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert set(result["before"].values()) == {0}  # a fresh process: nothing loaded yet
    assert min(result["after"].values()) >= 1, result["after"]
    assert result["seconds"] > 0
