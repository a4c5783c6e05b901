"""IMPALA with an LSTM core: the core's unroll against a naive step-by-step loop, the state
carried from actor to learner (the learner must reproduce the actor's logits exactly), episode
boundaries inside and across unrolls, truncation bootstraps, boundary checks, teachers, and a
memory task that a feed-forward network cannot solve."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fakes import FakeSink

from rlfleet.agents.common.actor import run_actor
from rlfleet.agents.common.learner import LearnerShell
from rlfleet.agents.impala.acting import SoftmaxPolicy
from rlfleet.agents.impala.learner import ImpalaLearner
from rlfleet.agents.impala.messages import unroll_problem
from rlfleet.agents.impala.network import build_network
from rlfleet.agents.impala.spec import SPEC
from rlfleet.agents.impala.teacher import load_teacher
from rlfleet.agents.impala.unrolls import CORE_STATE_KEY, UnrollBuilder, stack_unrolls
from rlfleet.agents.impala.update import ImpalaUpdate
from rlfleet.agents.spec import ActorSlot
from rlfleet.cli.policies import load_greedy_policy
from rlfleet.cli.presets import build_config
from rlfleet.envs.spec import probe_env
from rlfleet.errors import ConfigError
from rlfleet.math import vtrace_from_logits
from rlfleet.models import (
    CoreStateHolder,
    LSTMPolicyValueNetwork,
    build_policy_value_network,
    is_recurrent,
)
from rlfleet.models.params import flatten_into, load_flat, param_count
from rlfleet.transport.codec import decode
from rlfleet.transport.ports import CMD_STOP

T, K, H = 5, 3, 6
ENV = probe_env("CartPole-v1")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def save(learner: ImpalaLearner, config, run_dir) -> None:
    """A checkpoint of ``learner`` in ``run_dir`` (through the shared learner shell)."""
    LearnerShell(learner, config, run_dir, FakeSink(), None, None).save()


def _lstm(obs_dim: int = 4, actions: int = 2, size: int = H, seed: int = 0):
    torch.manual_seed(seed)
    return build_policy_value_network((obs_dim,), actions, hidden=(8,), core="lstm", lstm_size=size)


def _config(*overrides: str):
    return build_config(
        "impala-cartpole",
        [
            f"algo.unroll_length={T}",
            f"env.envs_per_actor={K}",
            "model.hidden=[8]",
            "model.core=lstm",
            f"model.lstm_size={H}",
            "learner.batch_size=2",
            *overrides,
        ],
    )


# ----------------------------------------------------------------------------- network


def _naive_lstm_step(net, x, h, c):
    """The LSTM equations written out from the weights (gate order i, f, g, o)."""
    core = net.core
    gates = x @ core.weight_ih_l0.T + core.bias_ih_l0 + h @ core.weight_hh_l0.T + core.bias_hh_l0
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


@pytest.mark.parametrize("p_reset", [0.0, 0.3, 1.0])
def test_unroll_matches_a_naive_step_by_step_loop_with_resets(p_reset):
    net = _lstm(obs_dim=3, actions=3)
    t, b = 7, 4
    rng = np.random.default_rng(0)
    obs = torch.from_numpy(rng.normal(size=(t, b, 3)).astype(np.float32))
    state = torch.from_numpy(rng.normal(size=(2, b, H)).astype(np.float32))
    reset = torch.from_numpy(rng.random((t, b)) < p_reset)
    reset[0, 0] = p_reset > 0
    logits, values, after = net.unroll(obs, state, reset)
    assert logits.shape == (t, b, 3) and values.shape == (t, b)
    # the state after the last step, and after every step followed by a reset in some row
    assert set(after) == {t - 1} | {i - 1 for i in range(1, t) if reset[i].any()}
    with torch.no_grad():
        for j in range(b):  # one environment at a time, one step at a time
            h, c = state[0, j : j + 1].clone(), state[1, j : j + 1].clone()
            for i in range(t):
                if reset[i, j]:
                    h, c = torch.zeros_like(h), torch.zeros_like(c)
                h, c = _naive_lstm_step(net, net.torso(obs[i, j : j + 1]), h, c)
                torch.testing.assert_close(logits[i, j], net.policy(h)[0])
                torch.testing.assert_close(values[i, j], net.value(h)[0, 0])
                if i in after:
                    torch.testing.assert_close(after[i][0, j], h[0])
                    torch.testing.assert_close(after[i][1, j], c[0])
            one_logits, _, _ = (
                net(obs[t - 1, j : j + 1], after[t - 2][:, j : j + 1])
                if (t - 2 in after and not reset[t - 1, j])
                else (None, None, None)
            )
            if one_logits is not None:  # a single step from a returned state agrees too
                torch.testing.assert_close(one_logits[0], logits[t - 1, j])


def test_core_holder_keeps_state_between_calls_and_zeroes_only_ended_episodes():
    net = _lstm()
    holder = CoreStateHolder(net)
    obs = torch.randn(3, 4)
    first, _ = holder(obs)
    second, _ = holder(obs)
    assert not torch.allclose(first, second)  # the state moved on
    before = holder.state.clone()
    holder.reset(np.array([False, True, False]))
    assert torch.equal(holder.state[:, 1], torch.zeros(2, H))
    assert torch.equal(holder.state[:, [0, 2]], before[:, [0, 2]])
    with pytest.raises(ConfigError, match="acting on 2 observations with a state for 3"):
        holder(obs[:2])
    holder.clear()
    again, _ = holder(obs)
    torch.testing.assert_close(again, first)  # from zeros, as at the start
    with pytest.raises(ConfigError, match="no core state to hold"):
        CoreStateHolder(build_policy_value_network((4,), 2, hidden=(8,)))


def test_bad_core_names_and_state_shapes_are_named():
    with pytest.raises(ConfigError, match="unknown core 'gru'; valid cores: none, lstm"):
        build_policy_value_network((4,), 2, core="gru")
    with pytest.raises(ConfigError, match=r"model.core 'gru' is unknown; valid: none, lstm"):
        build_config("impala-cartpole", ["model.core=gru"])
    with pytest.raises(ConfigError, match=r"core state has shape \(2, 3, 5\); expected"):
        _lstm()(torch.zeros(3, 4), torch.zeros(2, 3, 5))


# ---------------------------------------------------------------- actor -> learner state


def _run_actor(config, net, stop_after: int) -> list[dict[str, np.ndarray]]:
    flat = flatten_into(net, np.empty(param_count(net), np.float32))

    class Params:
        def fetch_if_newer(self, have: int, out: np.ndarray) -> int | None:
            if have >= 1:
                return None
            out[:] = flat
            return 1

    payloads: list[bytes] = []

    class Outbox:
        def push(self, payload: bytes) -> None:
            payloads.append(payload)

    class Link:
        def send(self, kind: str, **meta) -> None:
            pass

        def poll_command(self, timeout: float = 0.0) -> str | None:
            return CMD_STOP if len(payloads) >= stop_after else None

    run_actor(SPEC.make_acting, config, ActorSlot(0, 1, 0), 11, Outbox(), Params(), Link())
    out = []
    for payload in payloads:
        arrays = decode(payload).arrays
        assert unroll_problem(arrays, T, (4,), np.dtype(np.float32), 2, core_size=H) == ""
        out.append(arrays)
    return out


def test_learner_reproduces_the_actors_logits_across_episode_and_unroll_boundaries():
    # Short episodes (time limit 4, random-ish play) so every unroll of 5 steps holds episode
    # ends: truncations and terminations inside unrolls and episodes that span two unrolls.
    config = _config("env.max_episode_steps=4")
    net = build_network(config, ENV)
    unrolls = _run_actor(config, net, stop_after=6)
    batch = stack_unrolls(unrolls)
    assert batch["done"][:-1].any() and batch["truncated"].any()
    assert not np.all(batch[CORE_STATE_KEY] == 0)  # later unrolls start mid-episode
    learner_net = build_network(config, ENV)
    load_flat(learner_net, flatten_into(net, np.empty(param_count(net), np.float32)))
    update = ImpalaUpdate(learner_net)
    log_rhos = update.log_rhos(batch)
    assert log_rhos.shape == batch["action"].shape
    torch.testing.assert_close(log_rhos, torch.zeros_like(log_rhos), atol=2e-5, rtol=0)
    # Negative controls: without the carried state, or without resets at episode starts,
    # the learner's policy is not the actor's.
    zeroed = {**batch, CORE_STATE_KEY: np.zeros_like(batch[CORE_STATE_KEY])}
    assert update.log_rhos(zeroed).abs().max() > 1e-3
    t = batch["action"].shape[0]
    with torch.no_grad():
        obs, state = torch.from_numpy(batch["obs"][:t]), torch.from_numpy(batch[CORE_STATE_KEY])
        no_resets, _, _ = learner_net.unroll(
            obs, state, torch.zeros(batch["done"].shape, dtype=bool)
        )
    assert (no_resets - torch.from_numpy(batch["behaviour_logits"])).abs().max() > 1e-3
    inconsistent = {**batch, "done": np.zeros_like(batch["done"])}
    with pytest.raises(ConfigError, match="truncated step is not marked done"):
        update.log_rhos(inconsistent)


def test_truncated_step_bootstraps_from_the_core_state_after_that_step():
    net = _lstm(seed=3)
    t, gamma = 4, 0.9
    rng = np.random.default_rng(1)
    obs = rng.normal(size=(t + 1, 1, 4)).astype(np.float32)
    final = rng.normal(size=(1, 4)).astype(np.float32)
    start = rng.normal(size=(2, 1, H)).astype(np.float32)
    done = np.array([[False], [True], [False], [False]])
    batch = {
        "obs": obs,
        "action": rng.integers(0, 2, size=(t, 1)),
        "reward": rng.normal(size=(t, 1)).astype(np.float32),
        "discount": np.full((t, 1), gamma, np.float32),
        "done": done,
        "truncated": done.copy(),
        "behaviour_logits": rng.normal(size=(t, 1, 2)).astype(np.float32),
        "final_obs": final,
        "final_obs_index": np.array([[1, 0]]),
        "policy_version": np.array(0),
        CORE_STATE_KEY: start,
    }
    # Naive: step through the episode; x_final follows obs[1] with the state after obs[1].
    with torch.no_grad():
        state = torch.from_numpy(start)
        logits, values = [], []
        for i in range(t + 1):
            if i == 2:  # the truncated episode's successor starts here
                _, v_final, _ = net(torch.from_numpy(final), state)
                state = torch.zeros_like(state)
            lg, v, state = net(torch.from_numpy(obs[i]), state)
            logits.append(lg[0])
            values.append(v[0])
        reward = torch.from_numpy(batch["reward"]).clone()
        discount = torch.from_numpy(batch["discount"]).clone()
        reward[1, 0] += gamma * v_final[0]
        discount[1, 0] = 0.0
        want = vtrace_from_logits(
            behaviour_logits=torch.from_numpy(batch["behaviour_logits"]),
            target_logits=torch.stack(logits[:t])[:, None],
            actions=torch.from_numpy(batch["action"]),
            discounts=discount,
            rewards=reward,
            values=torch.stack(values[:t])[:, None],
            bootstrap_value=values[t][None],
        )
    vs, adv = ImpalaUpdate(net).vtrace_targets(batch)
    torch.testing.assert_close(vs, want.vs)
    torch.testing.assert_close(adv, want.pg_advantages)


# ---------------------------------------------------------------- builder and boundaries


def test_builder_carries_the_state_that_starts_each_unroll():
    builder = UnrollBuilder(2, 2, (1,), np.float32, 2, 0.99, core_size=3)
    with pytest.raises(ConfigError, match="core_state is required"):
        builder.start(np.zeros((2, 1)))
    s0 = np.full((2, 2, 3), 0.5, np.float32)
    builder.start(np.zeros((2, 1)), s0)
    step = {
        "action": np.zeros(2, np.int64),
        "behaviour_logits": np.zeros((2, 2), np.float32),
        "reward": np.zeros(2),
        "terminated": np.zeros(2, bool),
        "truncated": np.zeros(2, bool),
        "next_obs": np.ones((2, 1)),
    }
    with pytest.raises(ConfigError, match="next_core_state is required"):
        builder.add(**step)
    s1, s2 = np.full((2, 2, 3), 1.0), np.full((2, 2, 3), 2.0)
    assert builder.add(**step, next_core_state=s1) is None
    first = builder.add(**step, next_core_state=s2)
    s0[:] = -1  # the builder keeps its own copies
    np.testing.assert_array_equal(first[CORE_STATE_KEY], np.full((2, 2, 3), 0.5))
    builder.add(**step, next_core_state=s1)
    second = builder.add(**step, next_core_state=s1)
    np.testing.assert_array_equal(second[CORE_STATE_KEY], s2)  # the state after step 2
    stacked = stack_unrolls([first, second])
    assert stacked[CORE_STATE_KEY].shape == (2, 4, 3)
    plain = {k: v for k, v in second.items() if k != CORE_STATE_KEY}
    with pytest.raises(ConfigError, match=r"unrolls \[1\] lack 'core_state'"):
        stack_unrolls([first, plain])
    with pytest.raises(ConfigError, match="no core"):
        UnrollBuilder(2, 2, (1,), np.float32, 2, 0.99).start(np.zeros((2, 1)), s0)


def test_learner_boundary_checks_name_core_state_problems():
    config = _config("env.max_episode_steps=4")
    unroll = _run_actor(config, build_network(config, ENV), stop_after=1)[0]
    arrays = unroll

    def problem(**change) -> str:
        return unroll_problem({**arrays, **change}, T, (4,), np.dtype(np.float32), 2, H)

    assert problem() == ""
    missing = {k: v for k, v in arrays.items() if k != CORE_STATE_KEY}
    assert "no core_state" in unroll_problem(missing, T, (4,), np.dtype(np.float32), 2, H)
    assert "unexpected core_state" in unroll_problem(arrays, T, (4,), np.dtype(np.float32), 2)
    assert "expected float32[2, 3, 6]" in problem(core_state=np.zeros((2, 3, 5), np.float32))
    assert "expected float32" in problem(core_state=np.zeros((2, 3, H), np.float64))
    bad = arrays[CORE_STATE_KEY].copy()
    bad[0, 0, 0] = np.nan
    assert "non-finite core_state" in problem(core_state=bad)
    batch = stack_unrolls([unroll])
    del batch[CORE_STATE_KEY]
    with pytest.raises(ConfigError, match="batch lacks 'core_state'"):
        ImpalaUpdate(build_network(config, ENV)).step(batch)


# ------------------------------------------------------------------ teachers and policies


def test_lstm_student_learns_from_a_feed_forward_teacher_and_lstm_teachers_are_refused(tmp_path):
    teacher_run = tmp_path / "teacher"
    ff = build_config("impala-cartpole", [f"algo.unroll_length={T}", f"env.envs_per_actor={K}"])
    save(ImpalaLearner(ff, ENV, seed=0), ff, teacher_run)
    config = _config("env.max_episode_steps=4", f"kickstart.teacher={teacher_run}")
    student = ImpalaLearner(config, ENV, seed=0)
    assert is_recurrent(student.update.net)
    net = build_network(config, ENV)
    stats = student.update.step(stack_unrolls(_run_actor(config, net, stop_after=2)))
    assert stats["distill_loss"] > 0 and stats["kickstart_lambda"] == 1.0

    lstm_run = tmp_path / "lstm_teacher"
    save(ImpalaLearner(_config(), ENV, seed=0), _config(), lstm_run)
    with pytest.raises(ConfigError, match="has an LSTM core .* Use a feed-forward teacher"):
        load_teacher(lstm_run, 1.0, ENV)


def test_greedy_policy_of_an_lstm_checkpoint_remembers_and_resets(tmp_path):
    learner = ImpalaLearner(_config(), ENV, seed=0)
    save(learner, _config(), tmp_path)
    policy = load_greedy_policy(str(tmp_path))
    net = learner.update.net
    rng = np.random.default_rng(0)
    episode = rng.normal(size=(6, 4)).astype(np.float32)

    def expected() -> list[int]:
        state, actions = net.initial_state(1), []
        with torch.no_grad():
            for obs in episode:
                logits, _, state = net(torch.from_numpy(obs[None]), state)
                actions.append(int(logits.argmax()))
        return actions

    policy.reset()
    first = [policy(obs) for obs in episode]
    assert first == expected()
    policy.reset()
    assert [policy(obs) for obs in episode] == first
    assert isinstance(net, LSTMPolicyValueNetwork)


# ---------------------------------------------------------------------- a memory task


class CueEnv:
    """K parallel episodes of ``length`` steps. Step 0 shows a cue (+1 or -1); later steps show
    only a clock. At the last step the action must name the cue (+1 reward) or it is wrong (-1);
    other steps give 0. A feed-forward policy sees no cue at the last step: expected return 0."""

    def __init__(self, k: int, length: int, seed: int) -> None:
        self.k, self.length = k, length
        self.rng = np.random.default_rng(seed)
        self.t = np.zeros(k, np.int64)
        self.cue = self.rng.integers(0, 2, size=k)
        self.t[:] = self.rng.integers(0, length, size=k)  # desynchronised episode starts

    def obs(self) -> np.ndarray:
        out = np.zeros((self.k, 2), np.float32)
        first = self.t == 0
        out[first, 0] = np.where(self.cue[first] == 1, 1.0, -1.0)
        out[:, 1] = self.t / (self.length - 1)
        return out

    def step(self, actions: np.ndarray):
        last = self.t == self.length - 1
        reward = np.where(last, np.where(actions == self.cue, 1.0, -1.0), 0.0).astype(np.float32)
        self.t = np.where(last, 0, self.t + 1)
        fresh = self.rng.integers(0, 2, size=self.k)
        self.cue = np.where(last, fresh, self.cue)
        return reward, last


def _train_cue_task(core: str, updates: int = 400, seed: int = 0) -> float:
    """Greedy success rate on the cue task after ``updates`` V-trace updates (synchronous)."""
    torch.manual_seed(seed)
    length, k, t = 4, 32, 5  # episodes of 4 steps in unrolls of 5: they span unroll boundaries
    net = build_policy_value_network((2,), 2, hidden=(16,), core=core, lstm_size=16)
    update = ImpalaUpdate(net, optimizer="adam", lr=3e-3, eps=1e-8, reduction="mean")
    holder = CoreStateHolder(net) if core == "lstm" else None
    policy = SoftmaxPolicy(holder or net, seed)
    env = CueEnv(k, length, seed)
    builder = UnrollBuilder(k, t, (2,), np.float32, 2, 0.9, core_size=16 if holder else 0)
    builder.start(env.obs(), holder.start(k) if holder else None)
    done_updates = 0
    while done_updates < updates:
        actions, logits = policy.act(builder.current_obs)
        reward, done = env.step(actions)
        if holder is not None:
            holder.reset(done)
        unroll = builder.add(
            actions,
            logits,
            reward,
            done,
            np.zeros(k, bool),
            env.obs(),
            next_core_state=holder.state if holder else None,
        )
        if unroll is not None:
            update.step(stack_unrolls([unroll]))
            done_updates += 1
    # Greedy evaluation on fresh episodes, each from a zero state.
    test = CueEnv(256, length, seed + 1)
    test.t[:] = 0
    state = net.initial_state(256) if holder else None
    with torch.no_grad():
        for _ in range(length):
            obs = torch.from_numpy(test.obs())
            if holder:
                logits, _, state = net(obs, state)
            else:
                logits, _ = net(obs)
            reward, _ = test.step(logits.argmax(1).numpy())
    return float((reward > 0).mean())


def test_lstm_core_solves_a_memory_task_a_feed_forward_network_cannot():
    assert _train_cue_task("lstm") >= 0.95
    assert _train_cue_task("none") <= 0.7


def test_reward_scale_is_the_same_as_scaled_rewards():
    net = _lstm(seed=5)
    config = _config("env.max_episode_steps=4")
    batch = stack_unrolls(_run_actor(config, build_network(config, ENV), stop_after=2))
    scaled = {**batch, "reward": batch["reward"] * 0.1}
    vs, adv = ImpalaUpdate(net, reward_scale=0.1).vtrace_targets(batch)
    want_vs, want_adv = ImpalaUpdate(net).vtrace_targets(scaled)
    torch.testing.assert_close(vs, want_vs)
    torch.testing.assert_close(adv, want_adv)
    with pytest.raises(ConfigError, match="algo.reward_scale must be > 0, got 0"):
        build_config("impala-cartpole", ["algo.reward_scale=0"])
