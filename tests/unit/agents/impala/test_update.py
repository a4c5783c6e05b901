"""IMPALA algorithm layer: unroll builder, softmax policy and update, against naive references."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rlfleet.agents.impala.acting import SoftmaxPolicy
from rlfleet.agents.impala.unrolls import UnrollBuilder, stack_unrolls
from rlfleet.agents.impala.update import ImpalaUpdate
from rlfleet.errors import ConfigError
from rlfleet.models.networks import build_policy_value_network

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ----------------------------------------------------------------------------- helpers


def _random_steps(rng: np.random.Generator, k: int, steps: int, num_actions: int, obs_dim: int):
    """Random per-step env outputs with terminations, truncations and both at once."""
    out = []
    for _ in range(steps):
        term = rng.random(k) < 0.15
        trunc = rng.random(k) < 0.15  # overlaps term sometimes: termination must win
        out.append(
            {
                "action": rng.integers(0, num_actions, size=k),
                "logits": rng.normal(size=(k, num_actions)).astype(np.float32),
                "reward": rng.normal(size=k).astype(np.float32),
                "terminated": term,
                "truncated": trunc,
                "next_obs": rng.normal(size=(k, obs_dim)).astype(np.float32),
                "final_obs": rng.normal(size=(k, obs_dim)).astype(np.float32),
                "version": int(rng.integers(0, 100)),
            }
        )
    return out


def _naive_unrolls(first_obs, steps, t_len, gamma):
    """Slice the flat step list into unrolls one element at a time (the definition)."""
    k = first_obs.shape[0]
    obs_seq = [first_obs] + [s["next_obs"] for s in steps]
    unrolls = []
    for u in range(len(steps) // t_len):
        seg = steps[u * t_len : (u + 1) * t_len]
        exp = {
            "obs": np.stack(obs_seq[u * t_len : (u + 1) * t_len + 1]),
            "action": np.zeros((t_len, k), np.int64),
            "reward": np.zeros((t_len, k), np.float32),
            "discount": np.zeros((t_len, k), np.float32),
            "done": np.zeros((t_len, k), bool),
            "truncated": np.zeros((t_len, k), bool),
            "behaviour_logits": np.stack([s["logits"] for s in seg]),
            "policy_version": min(s["version"] for s in seg),
        }
        finals, index = [], []
        for t, s in enumerate(seg):
            for i in range(k):
                term, trunc = bool(s["terminated"][i]), bool(s["truncated"][i])
                exp["action"][t, i] = s["action"][i]
                exp["reward"][t, i] = s["reward"][i]
                exp["discount"][t, i] = 0.0 if term else gamma
                exp["done"][t, i] = term or trunc
                if trunc and not term:
                    exp["truncated"][t, i] = True
                    finals.append(s["final_obs"][i])
                    index.append((t, i))
        exp["final_obs"] = np.array(finals, np.float32).reshape(-1, first_obs.shape[1])
        exp["final_obs_index"] = np.array(index, np.int64).reshape(-1, 2)
        unrolls.append(exp)
    return unrolls


def _build(first_obs, steps, t_len, gamma, num_actions):
    k, obs_dim = first_obs.shape
    builder = UnrollBuilder(k, t_len, (obs_dim,), np.float32, num_actions, gamma)
    builder.start(first_obs)
    got = []
    for s in steps:
        u = builder.add(
            s["action"],
            s["logits"],
            s["reward"],
            s["terminated"],
            s["truncated"],
            s["next_obs"],
            s["final_obs"],
            policy_version=s["version"],
        )
        if u is not None:
            got.append(u)
    return got


def _fixed_batch(seed: int, t_len=6, b=5, obs_dim=3, num_actions=3, gamma=0.9):
    """A batch straight from the builder, with terminations and truncations inside."""
    rng = np.random.default_rng(seed)
    first = rng.normal(size=(b, obs_dim)).astype(np.float32)
    steps = _random_steps(rng, b, t_len, num_actions, obs_dim)
    (unroll,) = _build(first, steps, t_len, gamma, num_actions)
    return unroll


# ----------------------------------------------------------------------------- UnrollBuilder


@pytest.mark.parametrize("t_len,k", [(1, 1), (3, 2), (5, 4), (20, 8)])
def test_unroll_builder_matches_naive_slicing(t_len, k):
    rng = np.random.default_rng(100 * t_len + k)
    gamma, num_actions, obs_dim = 0.97, 3, 2
    first = rng.normal(size=(k, obs_dim)).astype(np.float32)
    steps = _random_steps(rng, k, 4 * t_len + t_len // 2, num_actions, obs_dim)
    got = _build(first, steps, t_len, gamma, num_actions)
    want = _naive_unrolls(first, steps, t_len, gamma)
    assert len(got) == len(want) == 4
    for g, w in zip(got, want, strict=True):
        for key, value in w.items():
            np.testing.assert_array_equal(g[key], value, err_msg=key)
        assert g["obs"].shape == (t_len + 1, k, obs_dim)
        assert g["action"].dtype == np.int64 and g["discount"].dtype == np.float32
    # Consecutive unrolls overlap by exactly the bootstrap observation.
    for a, b in zip(got, got[1:], strict=False):
        np.testing.assert_array_equal(a["obs"][-1], b["obs"][0])


def test_unroll_arrays_are_handed_over_not_reused():
    rng = np.random.default_rng(0)
    first = rng.normal(size=(2, 2)).astype(np.float32)
    steps = _random_steps(rng, 2, 6, 2, 2)
    got = _build(first, steps, 3, 0.9, 2)
    want = _naive_unrolls(first, steps, 3, 0.9)
    # Writing the second unroll must not have touched the first.
    np.testing.assert_array_equal(got[0]["obs"], want[0]["obs"])
    assert not np.shares_memory(got[0]["obs"], got[1]["obs"])


def test_stack_unrolls_shifts_truncation_columns():
    rng = np.random.default_rng(3)
    parts = []
    for k in (2, 3):
        first = rng.normal(size=(k, 2)).astype(np.float32)
        parts += _build(first, _random_steps(rng, k, 4, 2, 2), 4, 0.9, 2)
    batch = stack_unrolls(parts)
    assert batch["action"].shape == (4, 5) and batch["obs"].shape == (5, 5, 2)
    np.testing.assert_array_equal(batch["policy_version"], [p["policy_version"] for p in parts])
    # Each listed final obs sits at a truncated step, and they are exactly the truncated steps.
    idx = batch["final_obs_index"]
    assert len(idx) == batch["truncated"].sum() > 0
    assert batch["truncated"][idx[:, 0], idx[:, 1]].all()
    for (t, col), obs in zip(idx, batch["final_obs"], strict=True):
        part, k = (parts[0], col) if col < 2 else (parts[1], col - 2)
        row = np.flatnonzero(
            (part["final_obs_index"][:, 0] == t) & (part["final_obs_index"][:, 1] == k)
        )
        np.testing.assert_array_equal(part["final_obs"][row[0]], obs)


def test_unroll_builder_bad_inputs():
    builder = UnrollBuilder(2, 3, (4,), np.float32, 2, 0.99)
    with pytest.raises(ConfigError, match="start"):
        builder.add(
            np.zeros(2, int), np.zeros((2, 2)), np.zeros(2), [0, 0], [0, 0], np.zeros((2, 4))
        )
    with pytest.raises(ConfigError, match=r"obs has shape \(3, 4\); expected \(2, 4\)"):
        builder.start(np.zeros((3, 4)))
    builder.start(np.zeros((2, 4)))
    with pytest.raises(
        ConfigError, match=r"behaviour_logits has shape \(2, 3\); expected \(2, 2\)"
    ):
        builder.add(
            np.zeros(2, int), np.zeros((2, 3)), np.zeros(2), [0, 0], [0, 0], np.zeros((2, 4))
        )
    with pytest.raises(ConfigError, match=r"envs \[1\] were truncated but final_obs is None"):
        builder.add(
            np.zeros(2, int), np.zeros((2, 2)), np.zeros(2), [0, 0], [0, 1], np.zeros((2, 4))
        )
    with pytest.raises(ConfigError, match="gamma must be a number in"):
        UnrollBuilder(2, 3, (4,), np.float32, 2, 1.5)
    with pytest.raises(ConfigError, match="unroll_length must be an integer >= 1, got 0"):
        UnrollBuilder(2, 0, (4,), np.float32, 2, 0.9)


# ----------------------------------------------------------------------------- SoftmaxPolicy


def test_softmax_policy_frequencies_match_probabilities():
    probs = np.array([[0.125, 0.25, 0.625], [0.7, 0.2, 0.1]])
    n = 40_000
    logits = np.log(np.repeat(probs, n, axis=0)) + 3.0  # a shift must not matter
    actions = SoftmaxPolicy(lambda x: x, seed=1).sample(logits)
    for row, p in enumerate(probs):
        freq = np.bincount(actions[row * n : (row + 1) * n], minlength=3) / n
        # sd of each frequency <= sqrt(0.25 / n) = 0.0025; 0.012 is ~5 sd.
        np.testing.assert_allclose(freq, p, atol=0.012)


def test_softmax_policy_act_greedy_and_seeded():
    net = build_policy_value_network((4,), 3, hidden=(8,))
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    a1, logits = SoftmaxPolicy(net, seed=5).act(obs)
    a2, _ = SoftmaxPolicy(net, seed=5).act(obs)
    np.testing.assert_array_equal(a1, a2)
    assert a1.dtype == np.int64 and logits.shape == (64, 3) and logits.dtype == np.float32
    with torch.no_grad():
        expected_logits = net(torch.from_numpy(obs))[0].numpy()
    np.testing.assert_allclose(logits, expected_logits, rtol=1e-6)
    greedy, _ = SoftmaxPolicy(net, seed=5).act(obs, greedy=True)
    np.testing.assert_array_equal(greedy, expected_logits.argmax(axis=1))
    # A near-deterministic policy: sampling agrees with greedy.
    sharp = np.array([[0.0, 50.0, 0.0]] * 100)
    assert (SoftmaxPolicy(net, seed=2).sample(sharp) == 1).all()


# ----------------------------------------------------------------------------- ImpalaUpdate


def _naive_nstep_targets(batch, value_fn, gamma):
    """n-step bootstrapped returns, one (s, t) at a time: what V-trace is on-policy, lambda=1."""
    obs, rew = batch["obs"], batch["reward"]
    term = batch["discount"] == 0
    t_len, b = rew.shape
    finals = {
        (int(t), int(k)): o
        for (t, k), o in zip(batch["final_obs_index"], batch["final_obs"], strict=True)
    }
    out = np.zeros((t_len, b))
    for k in range(b):
        for s in range(t_len):
            g, disc = 0.0, 1.0
            for t in range(s, t_len):
                g += disc * rew[t, k]
                if term[t, k]:
                    break
                if (t, k) in finals:
                    g += disc * gamma * value_fn(finals[(t, k)])
                    break
                disc *= gamma
                if t == t_len - 1:
                    g += disc * value_fn(obs[t_len, k])
            out[s, k] = g
    return out


def test_on_policy_vtrace_targets_are_nstep_returns():
    torch.manual_seed(0)
    gamma = 0.9
    batch = _fixed_batch(seed=11, gamma=gamma)
    assert batch["truncated"].any() and (batch["discount"] == 0).any()  # both cases exercised
    net = build_policy_value_network((3,), 3, hidden=(16,))
    with torch.no_grad():
        logits = net(torch.from_numpy(batch["obs"][:-1].reshape(-1, 3)))[0]
    batch["behaviour_logits"] = logits.reshape(6, 5, 3).numpy()  # behaviour == target
    update = ImpalaUpdate(net, lambda_=1.0)
    vs, _ = update.vtrace_targets(batch)

    def value_fn(o):
        with torch.no_grad():
            return float(net(torch.from_numpy(np.asarray(o, np.float32))[None])[1])

    np.testing.assert_allclose(vs.numpy(), _naive_nstep_targets(batch, value_fn, gamma), atol=1e-5)


def test_truncation_bootstraps_from_final_obs_not_reset_obs():
    # Same batch, the truncation flags dropped: targets at truncated steps must change.
    torch.manual_seed(1)
    batch = _fixed_batch(seed=11)
    update = ImpalaUpdate(build_policy_value_network((3,), 3, hidden=(16,)))
    vs, _ = update.vtrace_targets(batch)
    plain = dict(batch)
    plain["truncated"] = np.zeros_like(batch["truncated"])
    plain["final_obs"] = batch["final_obs"][:0]
    plain["final_obs_index"] = batch["final_obs_index"][:0]
    vs_plain, _ = update.vtrace_targets(plain)
    t, k = batch["final_obs_index"][0]
    assert abs(float(vs[t, k] - vs_plain[t, k])) > 1e-4


@pytest.mark.parametrize("optimizer", ["rmsprop", "adam"])
def test_one_update_decreases_the_loss(optimizer):
    torch.manual_seed(2)
    batch = _fixed_batch(seed=5)
    net = build_policy_value_network((3,), 3, hidden=(16,))
    update = ImpalaUpdate(net, optimizer=optimizer, lr=1e-3, eps=1e-8)
    before = update.step(batch)
    after = update.step(batch)  # stats are computed before the step: this is the loss after one
    assert after["loss"] < before["loss"]
    assert set(before) >= {
        "loss",
        "pg_loss",
        "baseline_loss",
        "entropy_loss",
        "distill_loss",
        "entropy",
        "rho_clip_fraction",
        "pg_rho_clip_fraction",
        "grad_norm",
        "kickstart_lambda",
    }
    assert 0.0 <= before["rho_clip_fraction"] <= 1.0 and before["entropy"] > 0
    assert before["distill_loss"] == 0.0 and before["kickstart_lambda"] == 0.0


def test_loss_is_the_weighted_sum_of_its_terms():
    batch = _fixed_batch(seed=6)
    update = ImpalaUpdate(
        build_policy_value_network((3,), 3, hidden=(8,)), baseline_cost=0.3, entropy_cost=0.2
    )
    s = update.step(batch)
    expected = s["pg_loss"] + 0.3 * s["baseline_loss"] + 0.2 * s["entropy_loss"]
    assert s["loss"] == pytest.approx(expected, rel=1e-5)


def test_clip_fractions_count_clipped_ratios():
    batch = _fixed_batch(seed=7)
    net = build_policy_value_network((3,), 3, hidden=(8,))
    with torch.no_grad():
        logits = net(torch.from_numpy(batch["obs"][:-1].reshape(-1, 3)))[0].reshape(6, 5, 3)
    log_pi = F.log_softmax(logits, -1).gather(-1, torch.from_numpy(batch["action"])[..., None])
    log_mu = F.log_softmax(torch.from_numpy(batch["behaviour_logits"]), -1).gather(
        -1, torch.from_numpy(batch["action"])[..., None]
    )
    rhos = (log_pi - log_mu).exp().squeeze(-1)
    update = ImpalaUpdate(net, clip_rho_threshold=1.0, clip_pg_rho_threshold=2.0)
    s = update.step(batch)
    assert s["rho_clip_fraction"] == pytest.approx(float((rhos > 1.0).float().mean()))
    assert s["pg_rho_clip_fraction"] == pytest.approx(float((rhos > 2.0).float().mean()))
    assert 0 < s["pg_rho_clip_fraction"] < s["rho_clip_fraction"] < 1


def _teacher_net() -> nn.Module:
    # A different architecture from the student (Tanh MLP, no value head), sharp logits.
    torch.manual_seed(42)
    net = nn.Sequential(nn.Linear(3, 32), nn.Tanh(), nn.Linear(32, 3))
    with torch.no_grad():
        net[2].weight.mul_(8.0)
    return net


def _kl(teacher, student, obs):
    with torch.no_grad():
        p = F.log_softmax(teacher(obs), -1)
        q = F.log_softmax(student(obs)[0], -1)
        return float((p.exp() * (p - q)).sum(-1).mean())


def test_distillation_moves_student_toward_teacher_and_not_teacher():
    torch.manual_seed(3)
    batch = _fixed_batch(seed=8)
    teacher = _teacher_net()
    teacher_before = [p.detach().clone() for p in teacher.parameters()]
    student = build_policy_value_network((3,), 3, hidden=(32,))
    update = ImpalaUpdate(
        student,
        optimizer="adam",
        lr=1e-2,
        eps=1e-8,
        pg_cost=0.0,
        baseline_cost=0.0,
        entropy_cost=0.0,
        # A closure: ImpalaUpdate cannot switch the teacher's requires_grad off, so only its
        # no_grad evaluation can keep gradients out.
        teacher=lambda x: teacher(x),
        kickstart_lambda=1.0,
    )
    obs = torch.from_numpy(batch["obs"][:-1].reshape(-1, 3))
    kl_before = _kl(teacher, student, obs)
    distill = [update.step(batch)["distill_loss"] for _ in range(30)]
    kl_after = _kl(teacher, student, obs)
    assert kl_after < 0.2 * kl_before
    assert distill[-1] < distill[0]
    # (d) nothing reached the teacher: no gradient, no change.
    assert all(p.grad is None for p in teacher.parameters())
    for p, p0 in zip(teacher.parameters(), teacher_before, strict=True):
        assert torch.equal(p, p0)


def test_kickstart_lambda_follows_schedule():
    batch = _fixed_batch(seed=9)
    update = ImpalaUpdate(
        build_policy_value_network((3,), 3, hidden=(8,)),
        teacher=_teacher_net(),
        kickstart_schedule="linear",
        kickstart_lambda=2.0,
        kickstart_decay_steps=4,
    )
    lams = [update.step(batch)["kickstart_lambda"] for _ in range(6)]
    assert lams == pytest.approx([2.0, 1.5, 1.0, 0.5, 0.0, 0.0])
    with pytest.raises(ConfigError, match="decay_steps"):
        ImpalaUpdate(
            build_policy_value_network((3,), 3),
            teacher=_teacher_net(),
            kickstart_schedule="linear",
        )


def test_bad_inputs_raise_clear_errors():
    batch = _fixed_batch(seed=10)  # T=6, B=5, A=3
    net = build_policy_value_network((3,), 3, hidden=(8,))
    update = ImpalaUpdate(net)
    bad = dict(batch, obs=batch["obs"][:-1])
    with pytest.raises(ConfigError, match=r"obs has shape \(6, 5, 3\); it must be \[T\+1, B"):
        update.step(bad)
    bad = dict(batch, reward=batch["reward"][:, :4])
    with pytest.raises(ConfigError, match=r"reward has shape \(6, 4\); it must match action"):
        update.step(bad)
    bad = dict(batch, behaviour_logits=np.zeros((6, 5, 4), np.float32))
    with pytest.raises(ConfigError, match="behaviour_logits has 4 actions; the network has 3"):
        update.step(bad)
    bad = {k: v for k, v in batch.items() if k != "discount"}
    with pytest.raises(ConfigError, match=r"batch lacks keys \['discount'\]"):
        update.step(bad)
    bad = dict(
        batch, final_obs=batch["final_obs"][:0], final_obs_index=batch["final_obs_index"][:0]
    )
    with pytest.raises(ConfigError, match="every truncated step needs exactly one final_obs"):
        update.step(bad)
    with pytest.raises(ConfigError, match="unknown optimizer 'sgd'; valid: rmsprop, adam"):
        ImpalaUpdate(net, optimizer="sgd")
    with pytest.raises(ConfigError, match="unknown reduction"):
        ImpalaUpdate(net, reduction="max")
    assert update.updates == 0  # nothing was applied by the failing calls


# ----------------------------------------------------------------------------- learning smoke


def test_learns_cartpole_in_a_plain_loop():
    from rlfleet.envs import make_vector_env

    k, t_len, budget = 8, 20, 800
    torch.manual_seed(0)
    env = make_vector_env("CartPole-v1", k, seed=0)
    net = build_policy_value_network((4,), 2, hidden=(64, 64))
    policy = SoftmaxPolicy(net, seed=0)
    builder = UnrollBuilder(k, t_len, (4,), np.float32, 2, gamma=0.99)
    update = ImpalaUpdate(net, optimizer="rmsprop", lr=2e-3)
    builder.start(env.reset())
    returns: list[float] = []
    start = time.perf_counter()
    while update.updates < budget:
        actions, logits = policy.act(builder.current_obs)
        res = env.step(actions)
        returns += res.episode_returns[~np.isnan(res.episode_returns)].tolist()
        unroll = builder.add(
            actions, logits, res.reward, res.terminated, res.truncated, res.obs, res.next_obs
        )
        if unroll is not None:
            update.step(unroll)
            if len(returns) >= 20 and np.mean(returns[-20:]) >= 100:
                break
    mean = float(np.mean(returns[-20:]))
    assert mean >= 100, f"mean of last 20 returns {mean:.1f} after {update.updates} updates"
    assert time.perf_counter() - start < 60
