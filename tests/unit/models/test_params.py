"""Parameters as one flat vector: round trip and layout guard."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlfleet.errors import TransportError
from rlfleet.models import build_q_network
from rlfleet.models.params import flatten_into, layout_signature, load_flat, param_count


def test_flat_parameters_round_trip_and_guard_the_layout():
    a = build_q_network((4,), 2, hidden=(8, 8))
    b = build_q_network((4,), 2, hidden=(8, 8))
    flat = flatten_into(a, np.empty(param_count(a), np.float32))
    load_flat(b, flat)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    other = build_q_network((4,), 2, hidden=(9,))
    assert layout_signature(a) == layout_signature(b) != layout_signature(other)
    with pytest.raises(TransportError, match="shape"):
        load_flat(other, flat)
