"""The Python API end to end: rlfleet.train with callbacks on the custom-env example (as an
entry point), load_policy (one observation or a batch; greedy, sampling, an LSTM core,
observation normalisation) and evaluate."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_budget import TINY, TINY_IMPALA, TINY_PPO

import rlfleet
from rlfleet.agents.common.checkpoint import latest_checkpoint
from rlfleet.errors import ConfigError
from rlfleet.models.normalize import find_obs_normalizer

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_env"


@pytest.fixture
def corridor_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    yield
    sys.modules.pop("corridor", None)


class Log(rlfleet.Callback):
    def __init__(self) -> None:
        self.evaluations: list = []
        self.checkpoints: list = []

    def on_evaluation(self, ev):
        self.evaluations.append(ev)

    def on_checkpoint(self, ck):
        self.checkpoints.append(ck)


def test_train_with_an_entry_point_early_stopping_then_load_and_evaluate(
    tmp_path, corridor_on_path
):
    log = Log()
    overrides = {
        "env.id": "MyCorridor-v0",
        "env.entry_point": "corridor:make_corridor",
        "env.kwargs": {"length": 8},
        "actor.num_actors": 1,
        "run.stop_on_solve": False,  # the callback stops it
        "run.max_seconds": 90.0,
    }
    stop = rlfleet.EarlyStopping(patience=1000, target=0.9)
    result = rlfleet.train(
        EXAMPLE / "corridor.toml", overrides, run_dir=tmp_path / "run", callbacks=[log, stop]
    )
    assert result.stop_reason.startswith("early stop: return"), result.stop_reason
    assert max(e.return_mean for e in log.evaluations) >= 0.9  # (more may come while stopping)
    assert [e.version for e in log.evaluations] == sorted(e.version for e in log.evaluations)
    assert log.checkpoints and log.checkpoints[-1].final
    assert Path(log.checkpoints[-1].path).is_dir()
    final = json.loads((tmp_path / "run" / "final_eval.json").read_text())
    assert final["stop_reason"] == result.stop_reason

    policy = rlfleet.load_policy(result.run_dir)
    assert policy.env_id == "MyCorridor-v0" and policy.obs_shape == (2,)
    right_goal = np.array([0.0, 1.0], np.float32)
    action = policy(right_goal)
    assert isinstance(action, int) and action in (0, 1)
    batch = np.array([[0.0, 1.0], [0.0, -1.0], [0.5, 1.0]], np.float32)
    actions = policy(batch)
    assert actions.shape == (3,) and actions[0] == action
    with pytest.raises(rlfleet.RlfleetError, match="fits neither one observation"):
        policy(np.zeros(3, np.float32))
    with pytest.raises(ConfigError, match="greedy policy"):
        rlfleet.load_policy(result.run_dir, deterministic=False)  # Ape-X: action values
    ev = rlfleet.evaluate(policy, episodes=30, seed=11)  # the run's env and kwargs
    assert ev.returns.shape == (30,) and ev.mean > 0.5  # random play: about -0.2
    random = rlfleet.evaluate(lambda obs: np.zeros(len(obs), np.int64), "corridor:Corridor-v0", 30)
    assert random.mean < ev.mean


def test_a_callback_error_is_raised_after_the_run_shut_down(tmp_path):
    class Boom(rlfleet.Callback):
        def on_evaluation(self, ev):
            raise RuntimeError("callback says no")

    with pytest.raises(RuntimeError, match="callback says no"):
        rlfleet.train(
            "cartpole",
            [*TINY, "run.max_seconds=60"],
            run_dir=tmp_path / "run",
            callbacks=[Boom()],
        )
    final = json.loads((tmp_path / "run" / "final_eval.json").read_text())
    assert final["stop_reason"] == "callback error"
    assert (tmp_path / "run" / "checkpoints").is_dir()


def test_sampling_policy_with_observation_normalisation(tmp_path):
    result = rlfleet.train(
        "ppo-cartpole",
        [*TINY_PPO, "env.normalize_obs=true", "learner.max_updates=4", "run.total_env_steps=0"],
        run_dir=tmp_path / "run",
    )
    # the latest checkpoint: the run folder resolves to the best-evaluated policy, which may be
    # of a version before the statistics moved
    greedy = rlfleet.load_policy(latest_checkpoint(result.run_dir))
    normalizer = find_obs_normalizer(greedy.net)
    # statistics were learned (shift/scale travel with the parameters; count stays a buffer)
    assert normalizer is not None and not torch.all(normalizer.scale == 1.0)
    obs = np.random.default_rng(0).normal(0, 0.5, (64, 4)).astype(np.float32)
    with torch.no_grad():
        logits = greedy.net(torch.from_numpy(obs))[0]
    np.testing.assert_array_equal(greedy(obs), logits.argmax(1).numpy())  # normaliser inside

    sampler = rlfleet.load_policy(latest_checkpoint(result.run_dir), deterministic=False, seed=3)
    one = np.repeat(obs[:1], 4000, axis=0)
    drawn = sampler(one)
    p_right = torch.softmax(logits[0], 0)[1].item()
    assert abs(drawn.mean() - p_right) < 0.03  # sampled from the policy's own distribution


def test_lstm_policy_keeps_and_resets_its_state(tmp_path):
    result = rlfleet.train(
        "impala-cartpole-lstm",
        [*TINY_IMPALA, "learner.max_updates=3", "run.total_env_steps=0"],
        run_dir=tmp_path / "run",
    )
    policy = rlfleet.load_policy(result.run_dir)
    assert policy.recurrent
    seq = np.random.default_rng(1).normal(0, 0.3, (12, *policy.obs_shape)).astype(np.float32)
    first = [policy(o) for o in seq]
    policy.reset()
    again = [policy(o) for o in seq]
    assert first == again  # reset() starts the episode over
    policy.reset()
    both = np.stack([policy(np.stack([o, o])) for o in seq])  # a batch of two episodes
    assert both.tolist() == [[a, a] for a in first]


def test_a_policy_with_critic_only_inputs_acts_without_them(tmp_path):
    # CartPole's last observation entry as a critic-only input: deployment omits it
    result = rlfleet.train(
        "impala-cartpole",
        [*TINY_IMPALA, "model.critic_inputs=1", "learner.max_updates=3", "run.total_env_steps=0"],
        run_dir=tmp_path / "run",
    )
    obs = np.random.default_rng(2).normal(0, 0.3, (32, 4)).astype(np.float32)
    greedy = rlfleet.load_policy(result.run_dir)
    assert greedy.accepted_obs_shapes == [(4,), (3,)]
    np.testing.assert_array_equal(greedy(obs[:, :3]), greedy(obs))  # the policy never saw it
    assert greedy(obs[0, :3]) == greedy(obs[0])
    sampler = rlfleet.load_policy(result.run_dir, deterministic=False, seed=1)
    assert sampler(obs[:, :3]).shape == (32,)
    with pytest.raises(rlfleet.errors.EnvError, match="without its critic-only inputs"):
        greedy(obs[:, :2])
