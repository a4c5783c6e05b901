"""Networks: shapes per torso, dueling identity, uint8 scaling, bad names."""

from __future__ import annotations

import pytest
import torch

from rlfleet.errors import ConfigError
from rlfleet.models import (
    DuelingHead,
    build_policy_value_network,
    build_q_network,
    resolve_torso,
)


@pytest.mark.parametrize(
    "obs_shape, torso, expected",
    [
        ((4,), "auto", "mlp"),
        ((4, 10, 10), "auto", "minatar"),
        ((4, 84, 84), "auto", "nature"),
        ((7, 10, 10), "auto", "minatar"),
        ((8,), "mlp", "mlp"),
    ],
)
def test_resolve_and_shapes(obs_shape, torso, expected):
    assert resolve_torso(obs_shape, torso) == expected
    net = build_q_network(obs_shape, 5, torso=torso, hidden=(32, 16))
    q = net(torch.rand(3, *obs_shape))
    assert q.shape == (3, 5) and q.dtype == torch.float32
    pv = build_policy_value_network(obs_shape, 5, torso=torso, hidden=(32,))
    logits, value = pv(torch.rand(3, *obs_shape))
    assert logits.shape == (3, 5) and value.shape == (3,)


def test_architectures_follow_papers():
    minatar = build_q_network((4, 10, 10), 3, dueling=False)
    convs = [m for m in minatar.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [(16, (3, 3), (1, 1))]
    assert minatar.torso.out_features == 128
    nature = build_q_network((4, 84, 84), 6)
    convs = [m for m in nature.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (32, (8, 8), (4, 4)),
        (64, (4, 4), (2, 2)),
        (64, (3, 3), (1, 1)),
    ]
    linears = [m for m in nature.torso.modules() if isinstance(m, torch.nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(64 * 7 * 7, 512)]
    mlp = build_q_network((4,), 2, hidden=(64, 32), dueling=False)
    linears = [m for m in mlp.modules() if isinstance(m, torch.nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(4, 64), (64, 32), (32, 2)]


def test_dueling_identity():
    torch.manual_seed(0)
    net = build_q_network((6,), 4, hidden=(16,))
    assert isinstance(net.head, DuelingHead)
    obs = torch.randn(10, 6)
    q = net(obs)
    feats = net.torso(obs)
    v = net.head.value(feats)  # [B, 1]
    a = net.head.advantage(feats)  # [B, A]
    # Naive reference, action by action.
    for b in range(10):
        mean_a = sum(a[b, j].item() for j in range(4)) / 4
        for j in range(4):
            assert q[b, j].item() == pytest.approx(
                v[b, 0].item() + a[b, j].item() - mean_a, abs=1e-5
            )
    # The mean over actions of Q is exactly V.
    torch.testing.assert_close(q.mean(dim=1), v.squeeze(1))


def test_plain_head_is_linear():
    net = build_q_network((6,), 4, hidden=(16,), dueling=False)
    assert isinstance(net.head, torch.nn.Linear)


@pytest.mark.parametrize("obs_shape", [(4, 10, 10), (4, 84, 84), (3,)])
def test_uint8_scaling_equivalence(obs_shape):
    torch.manual_seed(1)
    net = build_q_network(obs_shape, 3, hidden=(8,))
    raw = torch.randint(0, 256, (2, *obs_shape), dtype=torch.uint8)
    torch.testing.assert_close(net(raw), net(raw.float() / 255.0))
    assert not torch.equal(net(raw), net(raw.float()))  # scaling actually happens


def test_bad_inputs():
    with pytest.raises(ConfigError, match=r"unknown torso 'resnet'.*mlp, minatar, nature"):
        build_q_network((4,), 2, torso="resnet")
    with pytest.raises(ConfigError, match=r"shape \(3, 32, 32\).*minatar"):
        build_q_network((3, 32, 32), 2)
    with pytest.raises(ConfigError, match="num_actions"):
        build_q_network((4,), 0)
    with pytest.raises(ConfigError, match="mlp' needs 1-D"):
        build_q_network((4, 10, 10), 2, torso="mlp")
