"""int8 Q-networks for actors: agreement with fp32 on a fixed batch, refusal of networks the
path cannot quantize (before any process starts), and an Ape-X actor acting with actor.int8."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlfleet.agents.registry import config_from_dict
from rlfleet.errors import ConfigError
from rlfleet.models.int8 import available_engines
from rlfleet.models.int8_policy import QuantizableQNetwork, int8_q_network
from rlfleet.models.networks import build_policy_value_network, build_q_network

pytestmark = [
    pytest.mark.unit,
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.skipif(not available_engines(), reason="torch build without quantized engines"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


@pytest.mark.parametrize("float_first", [True, False])
@pytest.mark.parametrize("dueling", [True, False])
def test_int8_minatar_q_network_agrees_with_fp32(float_first, dueling):
    torch.manual_seed(0)
    net = build_q_network((4, 10, 10), 3, torso="minatar", dueling=dueling).eval()
    gen = torch.Generator().manual_seed(1)
    calib = (torch.rand(64, 4, 10, 10, generator=gen) < 0.1).float()
    fixed = (torch.rand(64, 4, 10, 10, generator=gen) < 0.1).float()
    q = int8_q_network(net, [calib], float_first=float_first)
    with torch.inference_mode():
        a, b = net(fixed), q(fixed)
    # stated tolerance: relative L2 error of the Q-values below 5 %
    assert float((a - b).norm() / a.norm()) < 0.05


def test_networks_it_cannot_quantize_are_refused():
    tanh = build_q_network((4,), 2, torso="mlp", hidden=(8,))
    tanh.torso.body[1] = torch.nn.Tanh()
    with pytest.raises(ConfigError, match="cannot quantize a Tanh"):
        QuantizableQNetwork(tanh)
    with pytest.raises(ConfigError, match="feed-forward Q-networks"):
        QuantizableQNetwork(build_policy_value_network((4,), 2, core="lstm", lstm_size=8))


def test_apex_config_with_int8_is_checked_before_start_and_the_actor_acts():
    from rlfleet.agents.apex.acting import make_acting
    from rlfleet.agents.apex.spec import prepare
    from rlfleet.agents.spec import ActorSlot
    from rlfleet.envs.make import make_vector_env
    from rlfleet.envs.spec import EnvSpec

    config = config_from_dict(
        {"env": {"id": "CartPole-v1", "envs_per_actor": 4}, "model": {"hidden": [16, 16]},
         "actor": {"int8": True}}
    )  # fmt: skip
    prepare(config)
    venv = make_vector_env("CartPole-v1", 4, 0)
    acting = make_acting(config, EnvSpec.of(venv), ActorSlot(0, 1, 0), 0)
    obs = venv.reset()
    actions = acting.act(obs)
    assert actions.shape == (4,) and ((actions >= 0) & (actions < 2)).all()
    int8 = acting.behaviour.policy.net
    assert type(int8).__name__ == "QuantizableQNetwork"
    assert int8 is not acting.net  # priorities stay on the fp32 network
    assert np.isfinite(int8(torch.from_numpy(obs)).numpy()).all()
    acting.load_params(np.zeros(acting.param_count, np.float32), 1)
    acting.act(obs)
    assert acting.behaviour.policy.net is not int8  # quantized again after the new parameters
