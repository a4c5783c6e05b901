"""The evaluator's greedy policy comes from the agent: the argmax of the scores by default, a
Gaussian head's mean squashed into the bounds for Box actions; evaluation episodes are
domain-randomized as the config says."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlfleet.agents.common.evaluator import evaluate
from rlfleet.agents.common.networks import ArgmaxPolicy, HeadPolicy, eval_policy
from rlfleet.agents.ppo.network import build_network
from rlfleet.cli.presets import build_config
from rlfleet.envs.spec import probe_env
from rlfleet.models import build_q_network

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_default_is_the_argmax_and_box_actions_get_the_squashed_mean():
    apex = build_config("cartpole", ["model.hidden=[8]"])
    cartpole = probe_env("CartPole-v1")
    q = build_q_network((4,), 2, hidden=(8,))
    policy = eval_policy(apex, cartpole, q, seed=0)
    obs = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    assert isinstance(policy, ArgmaxPolicy)
    assert policy.act(obs, np.zeros(5)).tolist() == q(torch.from_numpy(obs)).argmax(1).tolist()

    ppo = build_config("ppo-pendulum", ["model.hidden=[8]"])
    pendulum = probe_env("Pendulum-v1")
    net = build_network(ppo, pendulum)
    policy = eval_policy(ppo, pendulum, net, seed=0)
    assert isinstance(policy, HeadPolicy)
    obs = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32)
    with torch.no_grad():
        mean = net.policy_params(torch.from_numpy(obs))[:, :1]
    greedy = policy.act(obs, np.zeros(6))
    np.testing.assert_allclose(greedy, (-2 + (torch.tanh(mean) + 1) * 2).numpy(), rtol=1e-6)
    explored = policy.act(obs, np.ones(6))
    assert explored.shape == (6, 1) and not np.allclose(explored, greedy)
    assert (np.abs(explored) <= 2).all()
    # a discrete PPO network: its logits' argmax
    disc = build_config("ppo-cartpole", ["model.hidden=[8]"])
    assert isinstance(eval_policy(disc, cartpole, build_network(disc, cartpole), 0), ArgmaxPolicy)


def test_evaluation_plays_randomized_episodes_with_box_actions():
    ppo = build_config("ppo-pendulum", ["model.hidden=[8]"])
    pendulum = probe_env("Pendulum-v1")
    policy = eval_policy(ppo, pendulum, build_network(ppo, pendulum), seed=0)
    plain, lengths, _ = evaluate(policy, "Pendulum-v1", 3, seed=5, reset_state=policy.reset)
    assert lengths.tolist() == [200, 200, 200]
    heavy, _, _ = evaluate(
        policy, "Pendulum-v1", 3, seed=5, reset_state=policy.reset, randomize={"mass": 3.0}
    )
    assert not np.allclose(plain, heavy), "the randomized physics changed the episodes"
    again, _, _ = evaluate(
        policy, "Pendulum-v1", 3, seed=5, reset_state=policy.reset, randomize={"mass": 3.0}
    )
    np.testing.assert_array_equal(heavy, again)
