"""The PPO acting step: rollouts of T steps with the behaviour log-probabilities of the raw
actions, Box actions squashed into the bounds, and synchronous waiting after the quota."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fakes import FakeLink, FakeOutbox

from rlfleet.agents.common.actor import run_actor
from rlfleet.agents.ppo.acting import PPOActing
from rlfleet.agents.ppo.messages import rollout_problem
from rlfleet.agents.ppo.network import build_network
from rlfleet.agents.ppo.spec import SPEC
from rlfleet.agents.spec import ActorSlot
from rlfleet.cli.presets import build_config
from rlfleet.envs import make_vector_env
from rlfleet.envs.spec import probe_env
from rlfleet.models.params import flatten_into, param_count
from rlfleet.transport.codec import decode
from rlfleet.transport.ports import CMD_STOP

T, K = 5, 3

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(preset: str, *overrides: str):
    return build_config(
        preset,
        [f"algo.rollout_length={T}", f"env.envs_per_actor={K}", "model.hidden=[16]", *overrides],
    )


@pytest.mark.parametrize(
    ("preset", "env_id"), [("ppo-cartpole", "CartPole-v1"), ("ppo-pendulum", "Pendulum-v1")]
)
def test_rollouts_carry_the_log_probabilities_of_their_raw_actions(preset, env_id):
    config = _config(preset)
    env = probe_env(env_id)
    acting = PPOActing(config, env, ActorSlot(0, 1, 0), seed=3)
    net = build_network(config, env)
    acting.load_params(flatten_into(net, np.empty(param_count(net), np.float32)), 7)
    venv = make_vector_env(env_id, K, 0)
    obs = venv.reset()
    acting.begin(obs)
    sent = []
    for _ in range(T):
        actions = acting.act(obs)
        if not env.discrete:
            low, high = env.action_bounds
            assert actions.shape == (K, 1) and (actions >= low).all() and (actions <= high).all()
        step = venv.step(actions)
        sent += acting.observe(step)
        obs = step.obs
    assert len(sent) == 1
    rollout = {k: v.copy() for k, v in decode(sent[0]).arrays.items()}
    assert rollout_problem(rollout, T, env) == ""
    assert int(rollout["policy_version"]) == 7
    with torch.no_grad():
        params = net.policy_params(torch.from_numpy(rollout["obs"][:T].reshape(T * K, -1)))
        action = torch.from_numpy(rollout["action"]).reshape(T * K, *rollout["action"].shape[2:])
        want = net.policy.log_prob(params, action).reshape(T, K).numpy()
    np.testing.assert_allclose(rollout["log_prob"], want, rtol=1e-5, atol=1e-5)
    assert acting.waiting(), "sync: one rollout per version, then wait"
    acting.load_params(flatten_into(net, np.empty(param_count(net), np.float32)), 8)
    assert not acting.waiting()


def test_async_actors_never_wait_and_quota_splits_the_batch():
    config = _config("ppo-cartpole", "algo.mode=async")
    acting = PPOActing(config, probe_env("CartPole-v1"), ActorSlot(0, 1, 0), seed=0)
    acting.sent = 10
    assert not acting.waiting()
    sync = _config("ppo-cartpole", "learner.rollouts_per_update=5")
    assert sync.quota(2) == 3 and sync.quota(5) == 1 and sync.quota(0) == 5
    fixed = _config("ppo-cartpole", "actor.rollouts_per_version=4")
    assert fixed.quota(2) == 4


def test_the_shared_actor_loop_waits_between_versions():
    """Version 1, one rollout, wait (nothing stepped) until version 2 appears, one more."""
    config = _config("ppo-cartpole")
    net = build_network(config, probe_env("CartPole-v1"))
    flat = flatten_into(net, np.empty(param_count(net), np.float32))

    class Params:
        calls = 0

        def fetch_if_newer(self, have: int, out: np.ndarray) -> int | None:
            Params.calls += 1
            version = 1 if Params.calls < 6 else 2
            if version <= have:
                return None
            out[:] = flat
            return version

    outbox = FakeOutbox()
    polls = [None] * 8 + [CMD_STOP] * 50
    link = FakeLink(polls)
    run_actor(SPEC.make_acting, config, ActorSlot(0, 1, 0), 0, outbox, Params(), link)
    versions = [int(decode(p).arrays["policy_version"]) for p in outbox.payloads]
    assert versions == [1, 2]
