"""The CTC recognizer: output shape per phi, compound scaling, and BatchNorm statistics that
travel with the published parameter vector."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlfleet.models.ocr import CtcRecognizer
from rlfleet.models.params import flatten_into, load_flat, param_count
from rlfleet.models.scaling import ALPHA, BETA, GAMMA, scaled_shape

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_torch_thread")]


def test_compound_scaling_grows_depth_width_and_height_together():
    shapes = [scaled_shape(phi) for phi in (0, 1, 2)]
    assert [s.height for s in shapes] == [32, 36, 44]
    for phi, s in enumerate(shapes):
        assert s.height % 4 == 0 and abs(s.height - 32 * GAMMA**phi) <= 2
        for (c0, n0, _), (c, n, _) in zip(shapes[0].stages, s.stages, strict=True):
            assert n == int(np.ceil(n0 * ALPHA**phi))
            assert abs(c - c0 * BETA**phi) <= 4
    counts = [param_count(CtcRecognizer(27, phi)) for phi in (0, 1, 2)]
    assert counts[0] < counts[1] < counts[2]


@pytest.mark.parametrize("phi", [0, 1])
def test_one_output_column_per_four_pixels(phi):
    h = scaled_shape(phi).height
    net = CtcRecognizer(9, phi).eval()
    out = net(torch.randint(0, 256, (3, 1, h, 40), dtype=torch.uint8))
    assert out.shape == (3, 10, 9)
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(3, 10))


def test_batchnorm_statistics_are_published_with_the_parameters():
    trained, actor = CtcRecognizer(9), CtcRecognizer(9)
    trained.train()
    trained(torch.rand(4, 1, 32, 64) * 3)  # moves the running statistics
    flat = np.empty(param_count(trained), np.float32)
    load_flat(actor, flatten_into(trained, flat))
    x = torch.rand(2, 1, 32, 64)
    torch.testing.assert_close(actor.eval()(x), trained.eval()(x))
    assert not trained.stem[1].running_var.requires_grad
