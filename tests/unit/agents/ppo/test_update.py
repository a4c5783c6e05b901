"""The PPO iteration against naive computations: GAE targets with time-limit bootstraps, the
clipped loss of one full-batch step, the behaviour ratio starting at 1, the KL early stop, and
the observation statistics never trained."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fakes import ppo_rollouts as rollouts

from rlfleet.agents.ppo.network import build_network
from rlfleet.agents.ppo.update import PPOUpdate
from rlfleet.cli.presets import build_config
from rlfleet.envs import make_vector_env
from rlfleet.envs.spec import EnvSpec
from rlfleet.models import find_obs_normalizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

T, K = 6, 3


def setup(preset: str, env_id: str, *overrides: str):
    config = build_config(
        preset,
        [f"algo.rollout_length={T}", f"env.envs_per_actor={K}", "model.hidden=[16]", *overrides],
    )
    torch.manual_seed(0)
    venv = make_vector_env(env_id, 1, 0)
    net = build_network(config, EnvSpec.of(venv))
    return config, net


def naive_targets(batch, values, final_values, gamma, lam, scale):
    """GAE one step at a time from the definitions, truncations bootstrapped by hand."""
    t_len, b_len = batch["reward"].shape
    finals = {
        tuple(ix): v for ix, v in zip(batch["final_obs_index"].tolist(), final_values, strict=True)
    }
    adv = np.zeros((t_len, b_len))
    for b in range(b_len):
        for t in range(t_len):
            total, coef = 0.0, 1.0
            for s in range(t, t_len):
                r = scale * batch["reward"][s, b]
                d = batch["discount"][s, b]
                nxt = values[s + 1, b]
                if (s, b) in finals:  # time limit: the true final observation's value
                    r, d, nxt = r + gamma * finals[(s, b)], 0.0, 0.0
                total += coef * (r + d * nxt - values[s, b])
                coef *= d * lam
                if d == 0.0:
                    break
            adv[t, b] = total
    return adv


@pytest.mark.parametrize(
    ("preset", "env_id"), [("ppo-cartpole", "CartPole-v1"), ("ppo-pendulum", "Pendulum-v1")]
)
def test_targets_are_gae_with_time_limit_bootstraps(preset, env_id):
    config, net = setup(preset, env_id)
    batch, _ = rollouts(config, net, env_id)
    assert len(batch["final_obs"]) > 0, "the time limit truncated some episodes"
    data = PPOUpdate(net, config).targets(batch)
    with torch.no_grad():
        _, v = net(torch.from_numpy(batch["obs"]).reshape(-1, *batch["obs"].shape[2:]))
        _, fv = net(torch.from_numpy(batch["final_obs"]))
    values = v.reshape(T + 1, K).double().numpy()
    a = config.algo
    want = naive_targets(batch, values, fv.double().numpy(), a.gamma, a.gae_lambda, a.reward_scale)
    np.testing.assert_allclose(data["advantages"].reshape(T, K).numpy(), want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        data["returns"].reshape(T, K).numpy(), want + values[:T], rtol=1e-4, atol=1e-5
    )
    assert float(data["behaviour_gap"]) < 1e-4, "the acting policy is the learner's"


def test_one_full_batch_step_minimises_the_naive_clipped_loss():
    config, net = setup(
        "ppo-pendulum",
        "Pendulum-v1",
        "algo.epochs=1",
        f"algo.minibatch_size={T * K}",
        "algo.normalize_advantages=false",
        "algo.value_cost=0.7",
        "algo.entropy_cost=0.01",
    )
    batch, _ = rollouts(config, net, "Pendulum-v1")
    update = PPOUpdate(net, config)
    data = update.targets(batch)
    # the naive loss at the starting parameters: ratio 1, so the surrogate is -mean(A)
    with torch.no_grad():
        params, values = net(data["obs"])
    adv, ret = data["advantages"].numpy(), data["returns"].numpy()
    log_std = params[:, 1].numpy()
    entropy = np.mean([ls + 0.5 + 0.5 * np.log(2 * np.pi) for ls in log_std])
    value = np.mean([(v - r) ** 2 for v, r in zip(values.numpy(), ret, strict=True)])
    want = -np.mean(adv) + 0.7 * value - 0.01 * entropy
    stats = update.iterate(batch, clip_eps=0.2)
    assert stats["loss"] == pytest.approx(want, rel=1e-4)
    assert stats["gradient_steps"] == 1 and stats["approx_kl"] == pytest.approx(0.0, abs=1e-6)
    assert stats["clip_fraction"] == 0.0


def test_kl_early_stop_ends_the_iteration_before_its_epochs():
    config, net = setup(
        "ppo-cartpole",
        "CartPole-v1",
        "algo.epochs=50",
        "algo.minibatch_size=6",
        "algo.target_kl=0.0001",
    )
    batch, _ = rollouts(config, net, "CartPole-v1", n=2)
    update = PPOUpdate(net, config)
    update.set_lr(0.05)
    stats = update.iterate(batch, clip_eps=0.2)
    assert stats["early_stop"] == 1.0 and stats["gradient_steps"] < 50 * 6


def test_the_observation_statistics_are_not_trained():
    config, net = setup("ppo-pendulum", "Pendulum-v1", "env.normalize_obs=true")
    norm = find_obs_normalizer(net)
    norm.update(np.random.default_rng(0).normal(size=(50, 3)))
    before = norm.shift.clone()
    batch, _ = rollouts(config, net, "Pendulum-v1")
    PPOUpdate(net, config).iterate(batch, clip_eps=0.2)
    assert torch.equal(norm.shift, before)
