"""Critic-only inputs (model.critic_inputs): the value head sees the last k observation entries,
the policy never does, and the greedy policy runs with them absent. IMPALA (feed-forward and
LSTM) and PPO."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fakes import impala_unrolls

from rlfleet.agents.common.critic_inputs import CriticInputs
from rlfleet.agents.common.networks import eval_policy
from rlfleet.agents.impala.learner import ImpalaLearner
from rlfleet.agents.impala.network import build_network as impala_network
from rlfleet.agents.impala.spec import check_env as impala_check
from rlfleet.agents.impala.unrolls import stack_unrolls
from rlfleet.agents.ppo.network import build_network as ppo_network
from rlfleet.cli.presets import build_config
from rlfleet.envs.spec import probe_env
from rlfleet.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CARTPOLE = probe_env("CartPole-v1")  # obs (4,): 3 for the policy, the last 1 critic-only here
SMALL = ["model.hidden=[16]", "model.critic_inputs=1"]


def _obs(n: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32))


def _perturb_critic(net: CriticInputs) -> None:
    with torch.no_grad():  # the last layer starts at zero; make g(p) non-trivial
        net.critic[2].weight.normal_()


@pytest.mark.parametrize("core", ["none", "lstm"])
def test_impala_policy_ignores_critic_inputs_and_the_value_uses_them(core) -> None:
    config = build_config("impala-cartpole", [*SMALL, f"model.core={core}", "model.lstm_size=8"])
    net = impala_network(config, CARTPOLE)
    assert isinstance(net, CriticInputs) and net.policy_dim == 3
    _perturb_critic(net)
    obs = _obs(6).requires_grad_(True)
    other = obs.detach().clone()
    other[:, 3] += 5.0  # different privileged input
    if core == "lstm":
        state = net.initial_state(6)
        logits, value, _ = net(obs, state)
        logits2, value2, _ = net(other, state)
        bare, bare_value, _ = net(obs[:, :3].detach(), state)
        # unroll over time agrees with stepping
        lg, vals, _ = net.unroll(obs.detach()[None], state, torch.zeros(1, 6, dtype=torch.bool))
        torch.testing.assert_close(lg[0], logits.detach())
        torch.testing.assert_close(vals[0], value.detach())
    else:
        logits, value = net(obs)
        logits2, value2 = net(other)
        bare, bare_value = net(obs[:, :3].detach())
    torch.testing.assert_close(logits, logits2)  # the policy never sees the last entry
    (grad,) = torch.autograd.grad(logits.sum(), obs)
    assert grad[:, 3].abs().max() == 0.0 and grad[:, :3].abs().max() > 0
    assert not torch.allclose(value, value2)  # the value does
    # without the privileged entries: same logits, the base value
    torch.testing.assert_close(bare, logits.detach())
    torch.testing.assert_close(bare_value, value.detach() - net.critic(obs[:, 3:]).squeeze(-1))
    with pytest.raises(ConfigError, match="takes 3 .policy. or 4"):
        net(_obs(2)[:, :2], *([net.initial_state(2)] if core == "lstm" else []))


def test_greedy_policy_runs_without_critic_inputs() -> None:
    for preset, build in (("impala-cartpole", impala_network), ("ppo-cartpole", ppo_network)):
        config = build_config(preset, SMALL)
        net = build(config, CARTPOLE)
        _perturb_critic(net)
        policy = eval_policy(config, CARTPOLE, net, seed=0)
        obs = _obs(8, seed=3).numpy()
        with_priv = policy.act(obs, np.zeros(8))
        policy.reset(None)
        without = policy.act(obs[:, :3], np.zeros(8))
        assert without.tolist() == with_priv.tolist(), preset


def test_ppo_policy_params_ignore_critic_inputs() -> None:
    net = ppo_network(build_config("ppo-cartpole", SMALL), CARTPOLE)
    _perturb_critic(net)
    obs = _obs(5)
    other = obs.clone()
    other[:, 3] -= 3.0
    torch.testing.assert_close(net.policy_params(obs), net.policy_params(other))
    assert not torch.allclose(net(obs)[1], net(other)[1])


def test_impala_update_trains_the_critic_inputs() -> None:
    config = build_config(
        "impala-cartpole",
        [*SMALL, "algo.unroll_length=5", "env.envs_per_actor=3", "learner.batch_size=2"],
    )
    learner = ImpalaLearner(config, CARTPOLE, seed=0)
    net = learner.update.net
    before = net.critic[2].weight.detach().clone()
    learner.learn(stack_unrolls(impala_unrolls(2, 5, 3)))
    assert not torch.equal(before, net.critic[2].weight)


def test_bad_critic_inputs_are_refused_before_training() -> None:
    for k in (4, 9):
        with pytest.raises(ConfigError, match=f"critic_inputs = {k}"):
            impala_check(build_config("impala-cartpole", [f"model.critic_inputs={k}"]), CARTPOLE)
    config = build_config("impala-cartpole", ["model.critic_inputs=1", "env.normalize_obs=true"])
    with pytest.raises(ConfigError, match="normalize_obs"):
        impala_check(config, CARTPOLE)
