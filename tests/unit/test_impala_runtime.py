"""IMPALA runtime parts against fakes: config selection, the actor role's messages, the
learner's boundary checks, batching, lag, metrics, checkpoints, teachers, the learner loop."""

from __future__ import annotations

import re
import threading
import time

import numpy as np
import pytest
import torch

from rlfleet.algorithms.impala import UnrollBuilder, stack_unrolls
from rlfleet.algorithms.params import flatten_into, param_count
from rlfleet.cli.policies import load_greedy_policy
from rlfleet.cli.presets import build_config, describe_config
from rlfleet.config import from_dict, to_dict
from rlfleet.envs import make_vector_env
from rlfleet.errors import ConfigError
from rlfleet.models import build_q_network
from rlfleet.runtime import checkpoint as ckpt
from rlfleet.runtime.apex_config import ApexConfig
from rlfleet.runtime.configs import config_from_dict
from rlfleet.runtime.impala_actor_role import encode_unroll, run_impala_actor
from rlfleet.runtime.impala_config import ImpalaConfig
from rlfleet.runtime.impala_learner import ImpalaLearner, unroll_problem
from rlfleet.runtime.learner_loop import serve
from rlfleet.runtime.links import CMD_CHECKPOINT, CMD_STOP
from rlfleet.runtime.policy_nets import build_network, load_network, load_teacher
from rlfleet.transport.codec import Message, decode

T, K = 5, 3
SMALL = [
    f"algo.unroll_length={T}",
    f"env.envs_per_actor={K}",
    "model.hidden=[16]",
    "learner.batch_size=2",
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(*overrides: str) -> ImpalaConfig:
    return build_config("impala-cartpole", [*SMALL, *overrides])


def _unrolls(n: int, version: int = 3, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """``n`` real CartPole unrolls (random actions; short time limit, so truncations occur)."""
    venv = make_vector_env("CartPole-v1", K, seed, max_episode_steps=4)
    builder = UnrollBuilder(K, T, venv.obs_shape, venv.obs_dtype, 2, 0.99)
    builder.start(venv.reset())
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        actions = rng.integers(0, 2, size=K)
        logits = rng.normal(size=(K, 2)).astype(np.float32)
        step = venv.step(actions)
        unroll = builder.add(
            actions,
            logits,
            step.reward,
            step.terminated,
            step.truncated,
            step.obs,
            step.next_obs,
            version,
        )
        if unroll is not None:
            out.append(unroll)
    return out


def _wire(unroll: dict[str, np.ndarray]) -> Message:
    return decode(encode_unroll(unroll, 0))


class FakeLink:
    def __init__(self, commands: list[str | None] | None = None) -> None:
        self.sent: list[tuple[str, dict]] = []
        self.commands = list(commands or [])

    def send(self, kind: str, **meta) -> None:
        self.sent.append((kind, meta))

    def poll_command(self, timeout: float = 0.0) -> str | None:
        return self.commands.pop(0) if self.commands else None

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.sent]


class FakeInbox:
    def __init__(self, messages: list[Message]) -> None:
        self.messages = list(messages)
        self.rejected = 0

    def pull(self, timeout: float | None, max_messages: int = 64) -> list[Message]:
        if not self.messages:
            time.sleep(timeout or 0.0)
            return []
        out, self.messages = self.messages[:max_messages], self.messages[max_messages:]
        return out


class FakeSink:
    def __init__(self) -> None:
        self.versions: list[int] = []
        self.flat: np.ndarray | None = None

    def publish(self, flat: np.ndarray, version: int) -> None:
        self.versions.append(version)
        self.flat = flat.copy()


# ---------------------------------------------------------------------------- config


def test_run_algorithm_picks_the_config_class_and_presets_carry_it():
    assert isinstance(build_config("impala-cartpole", []), ImpalaConfig)
    assert isinstance(build_config("cartpole", []), ApexConfig)
    config = _config()
    assert config.run.algorithm == "impala" and config.algo.unroll_length == T
    assert config_from_dict(to_dict(config)) == config
    assert "unroll_length" in describe_config("impala-cartpole")
    assert "n_step" not in describe_config("impala-cartpole")
    with pytest.raises(ConfigError, match="run.algorithm 'ppo' is unknown; valid: apex, impala"):
        config_from_dict({"run": {"algorithm": "ppo"}})
    with pytest.raises(ConfigError, match="needs run.algorithm = 'impala'"):
        from_dict(ImpalaConfig, {"run": {"algorithm": "apex"}})


@pytest.mark.parametrize(
    "override, match",
    [
        ("learner.optimizer=sgd", "learner.optimizer 'sgd' is unknown; valid: rmsprop, adam"),
        ("algo.reduction=max", "valid: sum, mean"),
        ("kickstart.schedule=cosine", "valid: constant, linear, step"),
        ("kickstart.decay_updates=0", "decay_steps"),
        ("kickstart.temperature=0", "kickstart.temperature must be > 0"),
        ("algo.unroll_length=0", "algo.unroll_length must be > 0"),
        ("algo.n_step=3", r"unknown config key algo\.n_step"),
        ("model.torso=resnet", "valid: auto, mlp, minatar, nature"),
    ],
)
def test_bad_impala_keys_name_the_value_and_the_valid_ones(override, match):
    with pytest.raises(ConfigError, match=match):
        _config(override)


def test_zero_clip_thresholds_mean_no_clipping():
    args = _config("algo.clip_rho_threshold=0", "algo.clip_pg_rho_threshold=2.0").update_args()
    assert args["clip_rho_threshold"] is None and args["clip_pg_rho_threshold"] == 2.0
    assert args["clip_c_threshold"] == 1.0 and args["reduction"] == "mean"


# ----------------------------------------------------------------------- boundary checks


def test_a_real_unroll_passes_the_learners_checks():
    (unroll,) = _unrolls(1)
    message = _wire(unroll)
    assert message.kind == "unroll"
    assert message.meta == {"actor": 0, "policy_version": 3, "env_steps": T * K}
    assert unroll["truncated"].any(), "the fixture should include truncations"
    assert unroll_problem(message.arrays, T, (4,), np.dtype(np.float32), 2) == ""


def _corrupt(arrays: dict[str, np.ndarray], key: str, value) -> dict[str, np.ndarray]:
    return {**arrays, key: value}


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda a: {k: v for k, v in a.items() if k != "reward"}, "missing arrays"),
        (lambda a: _corrupt(a, "obs", a["obs"].astype(np.float64)), "obs is float64"),
        (lambda a: _corrupt(a, "obs", a["obs"][:-1]), "expected \\[6, K"),
        (lambda a: _corrupt(a, "action", a["action"].astype(np.int32)), "action is int32"),
        (lambda a: _corrupt(a, "behaviour_logits", a["behaviour_logits"][..., :1]), "logits"),
        (lambda a: _corrupt(a, "reward", np.full_like(a["reward"], np.nan)), "non-finite"),
        (lambda a: _corrupt(a, "discount", a["discount"] + 2), "outside \\[0, 1\\]"),
        (lambda a: _corrupt(a, "action", a["action"] + 2), "actions outside"),
        (lambda a: _corrupt(a, "policy_version", np.zeros((2,), np.int64)), "policy_version"),
        (
            lambda a: _corrupt(a, "final_obs_index", a["final_obs_index"] + np.array([T, 0])),
            "points outside",
        ),
        (
            lambda a: _corrupt(a, "truncated", np.zeros_like(a["truncated"])),
            "distinct truncated steps",
        ),
        (lambda a: _corrupt(a, "done", np.zeros_like(a["done"])), "not marked done"),
    ],
)
def test_malformed_unrolls_are_named_not_crashed_on(mutate, match):
    arrays = dict(_wire(_unrolls(1)[0]).arrays)
    problem = unroll_problem(mutate(arrays), T, (4,), np.dtype(np.float32), 2)
    assert re.search(match, problem), problem


# -------------------------------------------------------------------------------- actor


def test_actor_pushes_unrolls_with_the_version_it_acted_with():
    config = _config()
    net = build_network(config, (4,), 2)
    flat = flatten_into(net, np.empty(param_count(net), np.float32))

    class Params:
        calls = 0

        def fetch_if_newer(self, have: int, out: np.ndarray) -> int | None:
            Params.calls += 1
            version = 1 if Params.calls < 4 else 2  # a newer version after a few unrolls
            if version <= have:
                return None
            out[:] = flat
            return version

    class Outbox:
        payloads: list[bytes] = []

        def push(self, payload: bytes) -> None:
            self.payloads.append(payload)

    class StopLater(FakeLink):
        def poll_command(self, timeout: float = 0.0) -> str | None:
            return CMD_STOP if len(Outbox.payloads) >= 6 else None

    link = StopLater()
    run_impala_actor(config, 0, 1, 7, Outbox(), Params(), link)
    messages = [decode(p) for p in Outbox.payloads]
    assert len(messages) >= 6
    versions = [m.meta["policy_version"] for m in messages]
    assert versions[0] == 1 and versions[-1] == 2 and versions == sorted(versions)
    for m in messages:
        assert unroll_problem(m.arrays, T, (4,), np.dtype(np.float32), 2) == ""
        assert m.arrays["policy_version"].shape == ()  # a 0-d array stays 0-d on the wire
        assert int(m.arrays["policy_version"]) == m.meta["policy_version"]
    # consecutive unrolls overlap by the bootstrap observation
    np.testing.assert_array_equal(messages[0].arrays["obs"][-1], messages[1].arrays["obs"][0])
    stats = [meta for kind, meta in link.sent if kind == "actor_stats"]
    assert stats and stats[-1]["env_steps"] >= 6 * T * K


# ------------------------------------------------------------------------------ learner


def test_learner_batches_b_unrolls_measures_lag_and_rejects_bad_messages(tmp_path):
    config = _config("learner.prefetch_batches=2")
    learner = ImpalaLearner(config, tmp_path, seed=0)
    good = [_wire(u) for u in _unrolls(4, version=0)]
    bad = Message("unroll", {}, dict(good[0].arrays, action=good[0].arrays["action"][:1]))
    inbox = FakeInbox([good[0], bad, *good[1:]])
    thread = threading.Thread(target=learner.collect_loop, args=(inbox,), daemon=True)
    thread.start()
    sink = FakeSink()
    learner.publish(sink)
    learner.publish(sink)  # learner at version 2, unrolls acted by version 0: lag 2
    assert learner.step_once(timeout=5.0) and learner.step_once(timeout=5.0)
    assert not learner.step_once(timeout=0.2), "4 good unrolls make exactly 2 batches of 2"
    learner.stop_event.set()
    thread.join(timeout=5)
    assert learner.error is None
    assert learner.counters.updates == 2 and learner.counters.unrolls == 4
    assert learner.counters.env_steps == 4 * T * K
    assert learner.bad_messages == 1 and "action" in learner.last_bad

    link = FakeLink()
    learner.report(link, time.monotonic() - 1.0, 0, inbox)
    ((kind, meta),) = link.sent
    assert kind == "learner_stats"
    assert meta["version_lag"] == 2.0 and meta["rejected"] == 1 and meta["updates"] == 2
    for name in ("learner/entropy", "learner/rho_clip_fraction", "learner/pg_rho_clip_fraction"):
        assert name in meta["metrics"]
    assert meta["metrics"]["params/version_lag_max"] == 2.0
    assert "learner/distill_loss" not in meta["metrics"], "no teacher, no distillation metric"


def test_checkpoint_restores_weights_optimizer_counters_and_schedule(tmp_path):
    teacher_dir = _apex_checkpoint(tmp_path / "teacher", hidden=(8,))
    config = _config(
        f'kickstart.teacher="{teacher_dir}"', "kickstart.decay_updates=10", "learner.batch_size=1"
    )
    learner = ImpalaLearner(config, tmp_path / "run", seed=0)
    for unroll in _unrolls(3):
        learner.batches.put(stack_unrolls([unroll]))
        assert learner.step_once(timeout=1.0)
    assert learner.update.kickstart_lambda() == pytest.approx(0.7)
    learner.counters.env_steps = 123
    path = learner.save()

    restored = ImpalaLearner(config, tmp_path / "run", seed=1)
    restored.restore(path)
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

    link = FakeLink()
    learner.report(link, time.monotonic() - 1.0, 0, FakeInbox([]))
    metrics = link.sent[0][1]["metrics"]
    assert metrics["learner/kickstart_lambda"] == pytest.approx((1.0 + 0.9 + 0.8) / 3)
    assert metrics["learner/distill_loss"] > 0


# ----------------------------------------------------------------------- teachers & greedy


def _apex_checkpoint(run_dir, hidden=(8,), env_id="CartPole-v1"):
    config = build_config("cartpole", [f"model.hidden={list(hidden)}", f"env.id={env_id}"])
    torch.manual_seed(0)
    obs_dim = 4 if env_id.startswith("CartPole") else 6
    num_actions = 2 if env_id.startswith("CartPole") else 3
    net = build_q_network((obs_dim,), num_actions, hidden=hidden, dueling=True)
    tensors = {f"online.{k}": v for k, v in net.state_dict().items()}
    tensors.update({f"target.{k}": v.clone() for k, v in net.state_dict().items()})
    opt = torch.optim.Adam(net.parameters())
    ckpt.save_checkpoint(
        run_dir, 5, tensors, opt.state_dict(), {"counters": {}, "config": to_dict(config)}
    )
    return run_dir


def test_apex_teacher_is_softmax_of_q_over_temperature(tmp_path):
    run = _apex_checkpoint(tmp_path / "apex", hidden=(8, 8))  # not the student's architecture
    loaded = load_network(run)
    teacher = load_teacher(run, 0.5, (4,), 2)
    obs = torch.randn(7, 4)
    with torch.no_grad():
        torch.testing.assert_close(teacher(obs), loaded.net(obs) / 0.5)
    assert not any(p.requires_grad for p in teacher.parameters())
    with pytest.raises(ConfigError, match=r"has \(6,\) and 3"):
        load_teacher(run, 1.0, (6,), 3)


def test_impala_checkpoint_gives_a_greedy_policy_from_its_logits(tmp_path):
    config = _config("model.hidden=[12, 12]")
    learner = ImpalaLearner(config, tmp_path, seed=0)
    path = learner.save()
    policy = load_greedy_policy(str(tmp_path))
    teacher = load_teacher(path, 1.0, (4,), 2)
    obs = np.array([0.01, -0.2, 0.03, 0.3], np.float32)
    with torch.no_grad():
        logits, _ = learner.update.net(torch.from_numpy(obs[None]))
        torch.testing.assert_close(teacher(torch.from_numpy(obs[None])), logits)
    assert policy(obs) == int(logits.argmax())


# ------------------------------------------------------------------------- learner loop


class FakeCore:
    def __init__(self, fail_after: int | None = None) -> None:
        self.counters = type("C", (), {"updates": 0, "version": 0, "elapsed_s": 0.0})()
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.saved = 0
        self.fail_after = fail_after

    def step_once(self, timeout: float) -> bool:
        self.counters.updates += 1
        if self.fail_after is not None and self.counters.updates >= self.fail_after:
            self.error = RuntimeError("collect thread died")
            self.stop_event.set()
        return True

    def publish(self, sink) -> None:
        self.counters.version += 1
        sink.publish(np.zeros(1, np.float32), self.counters.version)

    def save(self) -> str:
        self.saved += 1
        return f"ckpt-{self.saved}"

    def report(self, link, since, updates_before, inbox) -> None:
        link.send("learner_stats", updates=self.counters.updates)


def test_learner_loop_publishes_reports_obeys_commands_and_checkpoints():
    config = _config(
        "learner.publish_interval=3", "learner.max_updates=5", "run.log_interval_s=0.01"
    )
    core, sink = FakeCore(), FakeSink()
    link = FakeLink([CMD_CHECKPOINT, None, CMD_STOP])
    started = []
    thread = threading.Thread(target=lambda: started.append(1))
    serve(core, config, FakeInbox([]), sink, link, [thread])
    assert started == [1]
    kinds = link.kinds()
    assert kinds[0] == "learner_ready" and kinds[-1] == "stopped"
    assert "checkpoint" in kinds and kinds.count("budget_reached") <= 1
    assert core.saved == 2  # on command, and at the end
    n = core.counters.updates
    assert sink.versions == list(range(1, len(sink.versions) + 1))
    assert len(sink.versions) == 1 + n // 3 + 1  # first, every 3 updates, final


def test_learner_loop_reports_a_dead_thread_and_raises():
    config = _config("run.log_interval_s=100")
    core, link = FakeCore(fail_after=3), FakeLink()
    with pytest.raises(RuntimeError, match="collect thread died"):
        serve(core, config, FakeInbox([]), FakeSink(), link, [])
    assert link.kinds()[-1] == "error"
