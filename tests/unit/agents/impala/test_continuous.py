"""IMPALA with Box actions: unrolls carry raw Gaussian samples and their behaviour
log-probabilities, the learner's log-rhos are 0 when it holds the actor's parameters, V-trace is
fed the head's log-probabilities, and malformed continuous unrolls are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlfleet.agents.impala.acting import ImpalaActing
from rlfleet.agents.impala.messages import unroll_problem
from rlfleet.agents.impala.network import build_network
from rlfleet.agents.impala.unrolls import stack_unrolls
from rlfleet.agents.impala.update import ImpalaUpdate
from rlfleet.agents.spec import ActorSlot
from rlfleet.cli.presets import build_config
from rlfleet.envs import make_vector_env
from rlfleet.envs.spec import probe_env
from rlfleet.errors import ConfigError
from rlfleet.math import vtrace_from_importance_weights
from rlfleet.models.params import flatten_into, param_count
from rlfleet.transport.codec import decode

pytestmark = pytest.mark.usefixtures("one_torch_thread")

T, K = 5, 3
ENV = probe_env("Pendulum-v1")


def _unrolls(n: int = 2):
    config = build_config(
        "impala-cartpole",
        [
            "env.id=Pendulum-v1",
            f"algo.unroll_length={T}",
            f"env.envs_per_actor={K}",
            "model.hidden=[16]",
        ],
    )
    torch.manual_seed(0)
    learner_net = build_network(config, ENV)
    acting = ImpalaActing(config, ENV, ActorSlot(0, 1, 0), seed=1)
    acting.load_params(flatten_into(learner_net, np.empty(param_count(learner_net), np.float32)), 4)
    venv = make_vector_env("Pendulum-v1", K, 0, max_episode_steps=7)
    obs = venv.reset()
    acting.begin(obs)
    out = []
    while len(out) < n:
        actions = acting.act(obs)
        assert actions.shape == (K, 1) and np.abs(actions).max() <= 2.0
        step = venv.step(actions)
        for payload in acting.observe(step):
            out.append({k: v.copy() for k, v in decode(payload).arrays.items()})
        obs = step.obs
    return config, learner_net, out


def test_continuous_unrolls_pass_the_check_and_the_learner_reproduces_the_behaviour():
    config, net, unrolls = _unrolls()
    for u in unrolls:
        assert u["action"].shape == (T, K, 1) and u["behaviour_log_prob"].shape == (T, K)
        assert unroll_problem(u, T, ENV.obs_shape, ENV.obs_dtype, 0, action_dim=1) == ""
    batch = stack_unrolls(unrolls)
    update = ImpalaUpdate(net, **config.update_args())
    log_rhos = update.log_rhos(batch)
    assert log_rhos.abs().max().item() < 1e-4, "same parameters: pi == mu"
    vs, adv = update.vtrace_targets(batch)
    # the targets are V-trace of the head's log-probabilities (the truncation rewrite aside,
    # a batch without truncations must match the generic entry point exactly)
    assert vs.shape == (T, 2 * K) and torch.isfinite(adv).all()
    stats = update.step(batch)
    assert np.isfinite(stats["loss"]) and stats["entropy"] > 0
    assert update.log_rhos(batch).abs().max().item() > 0, "the step moved the policy"


def test_vtrace_of_continuous_unrolls_matches_the_generic_entry_point():
    config, net, unrolls = _unrolls(1)
    batch = stack_unrolls(unrolls)
    batch["final_obs"] = batch["final_obs"][:0]
    batch["final_obs_index"] = batch["final_obs_index"][:0]
    batch["truncated"][:] = False
    update = ImpalaUpdate(net, **config.update_args())
    with torch.no_grad():
        obs = torch.from_numpy(batch["obs"])
        params, values = net(obs.reshape(-1, 3))
        params, values = params.reshape(T + 1, K, -1), values.reshape(T + 1, K)
        target = net.policy.log_prob(params[:T], torch.from_numpy(batch["action"]))
    want = vtrace_from_importance_weights(
        target - torch.from_numpy(batch["behaviour_log_prob"]),
        torch.from_numpy(batch["discount"]),
        torch.from_numpy(batch["reward"]),
        values[:T],
        values[T],
    )
    vs, adv = update.vtrace_targets(batch)
    torch.testing.assert_close(vs, want.vs)
    torch.testing.assert_close(adv, want.pg_advantages)


def test_malformed_continuous_unrolls_and_teachers_are_refused():
    config, net, (u,) = _unrolls(1)
    bad = dict(u, action=u["action"].copy())
    bad["action"][0, 0, 0] = np.nan
    assert (
        unroll_problem(bad, T, ENV.obs_shape, ENV.obs_dtype, 0, action_dim=1)
        == "non-finite actions"
    )
    wrong = dict(u, behaviour_logits=np.zeros((T, K, 2), np.float32))
    del wrong["behaviour_log_prob"]
    assert "missing arrays ['behaviour_log_prob']" in unroll_problem(
        wrong, T, ENV.obs_shape, ENV.obs_dtype, 0, action_dim=1
    )
    with pytest.raises(ConfigError, match="kickstarting distils"):
        ImpalaUpdate(net, **config.update_args(), teacher=lambda obs: obs)
