"""Fakes of the ports roles see (:mod:`rlfleet.transport.ports`), shared by the unit tests:
status links that record what roles report, inboxes fed from a list, parameter sinks and
sources, outboxes that keep what was pushed."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from rlfleet.transport.codec import Message


class FakeLink:
    """Records ``send``s; answers ``poll_command`` from a script (then None)."""

    def __init__(self, commands: list[str | None] | None = None) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.commands = list(commands or [])

    def send(self, kind: str, **meta: Any) -> None:
        self.sent.append((kind, meta))

    def poll_command(self, timeout: float = 0.0) -> str | None:
        return self.commands.pop(0) if self.commands else None

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.sent]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [meta for k, meta in self.sent if k == kind]


class FakeInbox:
    """Hands out the given messages, ``max_messages`` at a time; sleeps ``timeout`` when empty."""

    def __init__(self, messages: list[Message] | None = None) -> None:
        self.messages = list(messages or [])
        self.rejected = 0

    def pull(self, timeout: float | None, max_messages: int = 64) -> list[Message]:
        if not self.messages:
            time.sleep(timeout or 0.0)
            return []
        out, self.messages = self.messages[:max_messages], self.messages[max_messages:]
        return out


class FakeSink:
    """A parameter sink that keeps the versions (and the last vector) published."""

    def __init__(self) -> None:
        self.versions: list[int] = []
        self.flat: np.ndarray | None = None

    def publish(self, flat: np.ndarray, version: int) -> None:
        self.versions.append(version)
        self.flat = flat.copy()


class FakeOutbox:
    """Keeps every pushed payload."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []

    def push(self, payload: bytes) -> None:
        self.payloads.append(payload)


def impala_unrolls(
    n: int, t: int, k: int, version: int = 3, seed: int = 0
) -> list[dict[str, np.ndarray]]:
    """``n`` real CartPole unrolls of ``t`` steps of ``k`` envs (random actions; a time limit of
    4 steps, so truncations occur), acted by parameter ``version``."""
    from rlfleet.agents.impala.unrolls import UnrollBuilder
    from rlfleet.envs import make_vector_env

    venv = make_vector_env("CartPole-v1", k, seed, max_episode_steps=4)
    builder = UnrollBuilder(k, t, venv.obs_shape, venv.obs_dtype, 2, 0.99)
    builder.start(venv.reset())
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        actions = rng.integers(0, 2, size=k)
        logits = rng.normal(size=(k, 2)).astype(np.float32)
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


def ppo_rollouts(config, net, env_id: str, n: int = 1, limit: int = 4, seed: int = 0):
    """``n`` PPO rollouts of ``config``'s T steps of K envs of ``env_id``, stacked, acted by
    ``net`` as policy version 1 (time limit ``limit``: truncations occur); and the env's spec."""
    from rlfleet.agents.common.heads import HeadSampler
    from rlfleet.agents.common.trajectories import TrajectoryBuilder, stack_trajectories
    from rlfleet.agents.ppo.messages import STEP_KEYS
    from rlfleet.envs import make_vector_env
    from rlfleet.envs.spec import EnvSpec

    k, t = config.env.envs_per_actor, config.algo.rollout_length
    venv = make_vector_env(env_id, k, seed, max_episode_steps=limit)
    env = EnvSpec.of(venv)
    sampler = HeadSampler(net, seed, params=net.policy_params)
    head = net.policy
    builder = TrajectoryBuilder(
        k,
        t,
        env.obs_shape,
        env.obs_dtype,
        config.algo.gamma,
        {"action": (head.action_shape, head.action_dtype), "log_prob": ((), np.float32)},
    )
    builder.start(venv.reset())
    out = []
    while len(out) < n:
        s = sampler.sample(builder.current_obs)
        res = venv.step(s.env)
        r = builder.add(
            {"action": s.raw, "log_prob": s.log_prob},
            res.reward,
            res.terminated,
            res.truncated,
            res.obs,
            res.next_obs,
            policy_version=1,
        )
        if r is not None:
            out.append(r)
    return stack_trajectories(out, STEP_KEYS), env


def apex_checkpoint(run_dir, hidden=(8,)):
    """A saved Ape-X CartPole checkpoint (a Q-network teacher of any architecture)."""
    import torch

    from rlfleet.agents.common import checkpoint as ckpt
    from rlfleet.cli.presets import build_config
    from rlfleet.config import to_dict
    from rlfleet.models import build_q_network

    config = build_config("cartpole", [f"model.hidden={list(hidden)}"])
    torch.manual_seed(0)
    net = build_q_network((4,), 2, hidden=hidden, dueling=True)
    tensors = {f"online.{k}": v for k, v in net.state_dict().items()}
    tensors.update({f"target.{k}": v.clone() for k, v in net.state_dict().items()})
    opt = torch.optim.Adam(net.parameters())
    ckpt.save_checkpoint(
        run_dir, 5, tensors, opt.state_dict(), {"counters": {}, "config": to_dict(config)}
    )
    return run_dir
