"""The IMPALA learner core against fakes: batching, lag, rejected messages, metrics, and its
checkpoints through the shared learner shell (weights, optimizer, counters, kickstart schedule)."""

from __future__ import annotations

import time

import pytest
import torch
from fakes import FakeInbox, FakeSink, apex_checkpoint, impala_unrolls

from rlfleet.agents.common.learner import LearnerShell
from rlfleet.agents.impala.config import ImpalaConfig
from rlfleet.agents.impala.learner import ImpalaLearner
from rlfleet.agents.impala.messages import encode_unroll
from rlfleet.agents.impala.unrolls import stack_unrolls
from rlfleet.cli.presets import build_config
from rlfleet.envs.spec import probe_env
from rlfleet.transport.codec import Message, decode

T, K = 5, 3
SMALL = [
    f"algo.unroll_length={T}",
    f"env.envs_per_actor={K}",
    "model.hidden=[16]",
    "learner.batch_size=2",
]
ENV = probe_env("CartPole-v1")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(*overrides: str) -> ImpalaConfig:
    return build_config("impala-cartpole", [*SMALL, *overrides])


def _wire(unroll) -> Message:
    return decode(encode_unroll(unroll, 0))


def test_learner_batches_b_unrolls_measures_lag_and_rejects_bad_messages():
    learner = ImpalaLearner(_config("learner.prefetch_batches=2"), ENV, seed=0)
    good = [_wire(u) for u in impala_unrolls(4, T, K, version=0)]
    bad = Message("unroll", {}, dict(good[0].arrays, action=good[0].arrays["action"][:1]))
    collect = learner.loops(FakeInbox([good[0], bad, *good[1:]]))["collect"]
    for _ in range(3):
        collect()
    learner.counters.version = 2  # learner at version 2, unrolls acted by version 0: lag 2
    batches = [learner.batches.get(timeout=1.0) for _ in range(2)]
    assert all(b is not None for b in batches), "4 good unrolls make exactly 2 batches of 2"
    assert learner.batches.get(timeout=0.1) is None
    for batch in batches:
        learner.learn(batch)
    assert learner.counters.unrolls == 4 and learner.counters.env_steps == 4 * T * K
    assert learner.bad_messages == 1 and "action" in learner.last_bad

    report = learner.report()
    assert report["version_lag"] == 2.0 and report["rejected"] == 1
    metrics = report["metrics"]
    for name in ("learner/entropy", "learner/rho_clip_fraction", "learner/pg_rho_clip_fraction"):
        assert metrics[name] is not None
    assert metrics["params/version_lag_max"] == 2.0
    assert "learner/distill_loss" not in metrics, "no teacher, no distillation metric"
    assert report["progress"] == {"queued unrolls": 0}


def test_checkpoint_restores_weights_optimizer_counters_and_schedule(tmp_path):
    teacher_dir = apex_checkpoint(tmp_path / "teacher", hidden=(8,))
    config = _config(
        f'kickstart.teacher="{teacher_dir}"', "kickstart.decay_updates=10", "learner.batch_size=1"
    )
    learner = ImpalaLearner(config, ENV, seed=0)
    shell = LearnerShell(learner, config, tmp_path / "run", FakeSink(), None, None)
    for unroll in impala_unrolls(3, T, K):
        learner.batches.put(stack_unrolls([unroll]))
        assert shell.step(timeout=1.0)
    assert learner.update.kickstart_lambda() == pytest.approx(0.7)
    learner.counters.env_steps = 123
    path = shell.save()

    restored = ImpalaLearner(config, ENV, seed=1)
    LearnerShell(restored, config, tmp_path / "run", FakeSink(), None, None).restore(path)
    assert restored.counters.updates == 3 and restored.counters.env_steps == 123
    assert restored.update.kickstart_lambda() == pytest.approx(0.7), "the schedule continues"
    for a, b in zip(
        learner.update.net.state_dict().values(),
        restored.update.net.state_dict().values(),
        strict=True,
    ):
        torch.testing.assert_close(a, b)
    state_a = learner.update.optimizer.state_dict()["state"]
    state_b = restored.update.optimizer.state_dict()["state"]
    torch.testing.assert_close(state_a[0]["exp_avg"], state_b[0]["exp_avg"])

    metrics = learner.report()["metrics"]
    assert metrics["learner/kickstart_lambda"] == pytest.approx((1.0 + 0.9 + 0.8) / 3)
    assert metrics["learner/distill_loss"] > 0


def test_an_idle_learner_reports_no_lag_and_no_losses():
    learner = ImpalaLearner(_config(), ENV, seed=0)
    time.sleep(0.01)
    report = learner.report()
    assert report["version_lag"] is None and report["metrics"]["learner/loss"] is None
