"""DAgger's acting step: the expert labels every visited state; the mixture follows beta of the
policy version; labels leave push_size at a time."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlfleet.agents.dagger.acting import DaggerActing
from rlfleet.agents.dagger.messages import message_schema
from rlfleet.agents.spec import ActorSlot
from rlfleet.cli.presets import build_config
from rlfleet.envs import make_vector_env
from rlfleet.envs.spec import EnvSpec
from rlfleet.models.params import flatten_into, param_count
from rlfleet.transport.codec import decode
from rlfleet.transport.schema import check_schema

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make(beta_decay: float, k: int = 64, push: int = 128):
    config = build_config(
        "dagger-cartpole",
        [f"dagger.beta_decay={beta_decay}", f"env.envs_per_actor={k}", f"actor.push_size={push}"],
    )
    venv = make_vector_env("CartPole-v1", k, 0)
    acting = DaggerActing(config, EnvSpec.of(venv), ActorSlot(0, 1, "a0"), seed=3)
    return config, venv, acting


def with_learner_always_left(acting: DaggerActing, version: int) -> None:
    """Weights that make the classifier pick action 0 everywhere."""
    with torch.no_grad():
        for p in acting.net.parameters():
            p.zero_()
        list(acting.net.parameters())[-1][0] = 1.0  # bias of action 0
    flat = flatten_into(acting.net, np.empty(param_count(acting.net), np.float32))
    acting.load_params(flat, version)


def test_every_visited_state_gets_the_experts_label_and_beta_follows_the_version():
    config, venv, acting = make(beta_decay=0.5)
    obs = venv.reset()
    with_learner_always_left(acting, version=1)
    assert acting.beta == 1.0
    expert = (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64)
    np.testing.assert_array_equal(acting.act(obs), expert)  # iteration 1: the expert drives
    with_learner_always_left(acting, version=3)
    assert acting.beta == 0.25
    actions = acting.act(obs)
    from_expert = actions == expert
    # the learner says 0: where the expert says 1 the mixture shows who chose
    chosen_by_expert = from_expert[expert == 1].mean()
    assert 0.05 < chosen_by_expert < 0.6  # ~beta = 0.25 of 30-odd draws
    np.testing.assert_array_equal(acting.labels[64:128], expert), "labels are the expert's"


def test_labels_leave_in_messages_of_push_size_with_the_acting_version():
    config, venv, acting = make(beta_decay=0.0, k=8, push=16)
    obs = venv.reset()
    with_learner_always_left(acting, version=2)
    sent = []
    for _ in range(5):
        step = venv.step(acting.act(obs))
        sent += acting.observe(step)
        obs = step.obs
    assert len(sent) == 2  # 40 labels, pushes at 16 and 32
    message = decode(sent[0])
    assert message.kind == "labels" and message.meta["policy_version"] == 2
    assert message.meta["env_steps"] == 16 and message.meta["actor"] == "a0"
    env = EnvSpec.of(venv)
    assert check_schema(message, message_schema(config, env)) == ""
    assert len(message.arrays["obs"]) == 16


def test_after_its_quota_an_actor_flushes_and_waits_for_the_next_policy():
    config, venv, acting = make(beta_decay=0.5, k=8, push=64)
    assert config.dagger.labels_per_iteration == 500
    obs = venv.reset()
    with_learner_always_left(acting, version=1)
    sent = []
    while not acting.waiting():
        step = venv.step(acting.act(obs))
        sent += acting.observe(step)
        obs = step.obs
    assert sum(len(decode(p).arrays["expert_action"]) for p in sent) == 504  # 63 steps of 8
    assert len(decode(sent[-1]).arrays["obs"]) == 56, "the last labels leave at once"
    with_learner_always_left(acting, version=2)
    assert not acting.waiting() and acting.labelled == 0
