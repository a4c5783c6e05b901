"""Ape-X DPG acting: per-explorer noise scales, actions inside the Box, actor-side initial
priorities against a naive TD3 target, pushed messages that pass the spec's own checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlfleet.agents.dpg.acting import actor_noise_scales, initial_priorities
from rlfleet.agents.dpg.acting import make_acting as DPGActing
from rlfleet.agents.dpg.messages import message_check, message_schema
from rlfleet.agents.dpg.network import build_network
from rlfleet.agents.spec import ActorSlot
from rlfleet.cli.presets import build_config
from rlfleet.envs.spec import probe_env
from rlfleet.envs.vector import StepResult
from rlfleet.math import exploration_ladder
from rlfleet.transport.codec import decode

SMALL = ["model.hidden=[16]", "env.envs_per_actor=3", "actor.push_size=4", "algo.n_step=2"]


@pytest.fixture(scope="module")
def env():
    return probe_env("Pendulum-v1")


def test_noise_scales_per_actor_and_per_env():
    per_actor = build_config("dpg-pendulum", ["actor.noise_per=actor", *SMALL])
    assert actor_noise_scales(per_actor, 1, 3).tolist() == [pytest.approx(0.3**1.75)] * 3
    per_env = build_config("dpg-pendulum", ["actor.noise_per=env", *SMALL])
    fleet = np.concatenate([actor_noise_scales(per_env, i, 2) for i in range(2)])
    np.testing.assert_allclose(fleet, exploration_ladder(6, 0.3, 1.5))


def test_initial_priorities_match_a_naive_twin_critic_target(env):
    config = build_config("dpg-pendulum", SMALL)
    torch.manual_seed(0)
    net = build_network(config, env)
    rng = np.random.default_rng(0)
    n = 6
    batch = {
        "obs": rng.normal(size=(n, 3)).astype(np.float32),
        "action": rng.uniform(-2, 2, size=(n, 1)).astype(np.float32),
        "reward": rng.normal(size=n).astype(np.float32),
        "discount": rng.choice([0.0, 0.98**2], size=n).astype(np.float32),
        "next_obs": rng.normal(size=(n, 3)).astype(np.float32),
    }
    got = initial_priorities(net, batch)
    with torch.no_grad():
        for i in range(n):
            s, s2 = (
                torch.from_numpy(batch["obs"][i : i + 1]),
                torch.from_numpy(batch["next_obs"][i : i + 1]),
            )
            a2 = net(s2)
            q1 = float(net.critics[0](torch.cat([s2, a2], 1)))
            q2 = float(net.critics[1](torch.cat([s2, a2], 1)))
            y = batch["reward"][i] + batch["discount"][i] * min(q1, q2)
            q = float(
                net.critics[0](torch.cat([s, torch.from_numpy(batch["action"][i : i + 1])], 1))
            )
            assert got[i] == pytest.approx(abs(y - q), rel=1e-4, abs=1e-5)


def test_acting_stays_in_the_box_and_pushes_checked_messages(env):
    config = build_config("dpg-pendulum", [*SMALL, "actor.random_steps=1", "actor.noise=1.0"])
    acting = DPGActing(config, env, ActorSlot(0, 1, 0), seed=3)
    check = message_check(config, env)
    schema = message_schema(config, env)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(3, 3)).astype(np.float32)
    acting.begin(obs)
    payloads = []
    for t in range(6):
        actions = acting.act(obs)
        assert actions.shape == (3, 1) and actions.dtype == np.float32
        assert ((actions >= -2.0) & (actions <= 2.0)).all()
        next_obs = rng.normal(size=(3, 3)).astype(np.float32)
        step = StepResult(
            obs=next_obs,
            next_obs=next_obs,
            reward=rng.normal(size=3).astype(np.float32),
            terminated=np.zeros(3, bool),
            truncated=np.array([t == 4, False, False]),
            episode_returns=np.full(3, np.nan),
            episode_lengths=np.zeros(3, np.int64),
        )
        payloads += acting.observe(step)
        obs = next_obs
    assert payloads, "push_size 4 was reached"
    for payload in payloads:
        message = decode(payload)
        assert message.kind == "dpg_experience"
        for name, (dtype, shape) in schema.items():
            assert message.arrays[name].dtype.name == dtype
            assert message.arrays[name].shape[1:] == shape
        assert check(message) == ""
        assert message.meta["env_steps"] > 0
