"""The PPO learner core against fakes: synchronous mode keeps exactly B rollouts of the current
version and discards (and counts) the rest; async mode keeps what is recent enough; an iteration
updates the observation statistics; checkpoints resume through the shared shell."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import FakeInbox, FakeLink, FakeSink
from fakes import ppo_rollouts as rollouts

from rlfleet.agents.common.learner import LearnerShell
from rlfleet.agents.ppo.learner import PPOLearner
from rlfleet.agents.ppo.messages import encode_rollout, rollout_problem
from rlfleet.agents.ppo.network import build_network
from rlfleet.cli.presets import build_config
from rlfleet.envs.spec import probe_env
from rlfleet.models import find_obs_normalizer
from rlfleet.transport.codec import decode
from rlfleet.transport.ports import CMD_STOP

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ENV = probe_env("Pendulum-v1")
T, K = 6, 3


def _config(*overrides: str):
    return build_config(
        "ppo-pendulum",
        [f"algo.rollout_length={T}", f"env.envs_per_actor={K}", "model.hidden=[16]", *overrides],
    )


def _messages(config, versions):
    net = build_network(config, ENV)
    out = []
    for i, v in enumerate(versions):
        batch, _ = rollouts(config, net, "Pendulum-v1", seed=i)
        one = {
            k: (val[:, :K] if val.ndim >= 2 and k not in ("final_obs", "final_obs_index") else val)
            for k, val in batch.items()
        }
        one["policy_version"] = np.array(v, np.int64)
        one["final_obs"], one["final_obs_index"] = batch["final_obs"], batch["final_obs_index"]
        assert rollout_problem(one, T, ENV) == ""
        out.append(decode(encode_rollout(one, 0)))
    return out


def test_sync_takes_b_rollouts_of_the_current_version_and_counts_the_rest():
    config = _config("learner.rollouts_per_update=2")
    learner = PPOLearner(config, ENV, seed=0)
    learner.counters.version = 3
    inbox = FakeInbox(_messages(config, [2, 3, 3, 3, 4]))
    collect = learner.loops(inbox)["collect"]
    for _ in range(4):
        collect()
    batch = learner.batches.get(timeout=1.0)
    assert batch is not None and batch["policy_version"].tolist() == [3, 3]
    assert batch["obs"].shape == (T + 1, 2 * K, 3)
    c = learner.counters
    # version 2 (stale), the third of version 3 (beyond B) and version 4 (not this iteration's)
    assert c.rollouts == 2 and c.discarded == 3 and c.discarded_env_steps == 3 * T * K
    assert c.env_steps == 2 * T * K
    learner.learn(batch)
    report = learner.report()
    assert report["metrics"]["ppo/discarded_rollouts"] == 3.0
    assert report["metrics"]["ppo/gradient_steps"] > 0 and report["version_lag"] == 0.0


def test_async_keeps_rollouts_up_to_max_lag():
    config = _config("algo.mode=async", "algo.max_lag=1")
    learner = PPOLearner(config, ENV, seed=0)
    learner.counters.version = 5
    collect = learner.loops(FakeInbox(_messages(config, [3, 4, 5])))["collect"]
    versions = []
    for _ in range(3):
        collect()  # the hand-over queue holds one batch: take it before the next
        batch = learner.batches.get(timeout=0.1)
        if batch is not None:
            versions.append(batch["policy_version"].tolist())
    assert versions == [[4], [5]] and learner.counters.discarded == 1


def test_an_iteration_updates_the_observation_statistics_that_get_published(tmp_path):
    config = _config("env.normalize_obs=true", "run.log_interval_s=0.05")
    learner = PPOLearner(config, ENV, seed=0)
    learner.counters.version = 1
    (message,) = _messages(config, [1])
    learner.loops(FakeInbox([message]))["collect"]()
    batch = learner.batches.get(timeout=1.0)
    learner.learn(batch)
    norm = find_obs_normalizer(learner.net)
    assert norm.count.item() == T * K
    np.testing.assert_allclose(
        norm.mean.numpy(), batch["obs"][:T].reshape(-1, 3).mean(0), rtol=1e-6
    )

    from rlfleet.agents.common.checkpoint import latest_checkpoint

    sink = FakeSink()
    shell = LearnerShell(learner, config, tmp_path, sink, FakeLink([CMD_STOP]), FakeInbox([]))
    shell.serve()
    resumed = PPOLearner(config, ENV, seed=1)
    shell2 = LearnerShell(resumed, config, tmp_path / "b", FakeSink(), FakeLink(), FakeInbox([]))
    shell2.restore(latest_checkpoint(tmp_path))
    assert find_obs_normalizer(resumed.net).count.item() == T * K, "statistics resume"
    assert resumed.counters.rollouts == 1
