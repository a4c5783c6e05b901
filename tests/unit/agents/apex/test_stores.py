"""Ape-X stores: the replay fields of actor transitions."""

from __future__ import annotations

import numpy as np

from rlfleet.agents.apex.config import ApexConfig
from rlfleet.agents.apex.stores import agent_fields
from rlfleet.replay import FieldSpec, FrameStackSpec


def test_replay_fields_store_atari_frames_once_and_vectors_plainly():
    c = ApexConfig()
    assert isinstance(agent_fields(c, (4, 84, 84), np.dtype(np.uint8))["obs"], FrameStackSpec)
    assert isinstance(agent_fields(c, (4,), np.dtype(np.float32))["obs"], FieldSpec)
    assert isinstance(agent_fields(c, (4, 10, 10), np.dtype(np.uint8))["obs"], FieldSpec)
