"""The Ape-X actor role: K environments as a batch, epsilon-greedy on a CPU network copy,
n-step transitions with actor-computed initial priorities, pushed in batches.

Transport-agnostic: it is handed an ``outbox`` (``push(bytes)``), a parameter source
(``fetch_if_newer(version, out)``) and a status link; the launcher decides how they travel.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from rlfleet.algorithms.dqn import EpsilonGreedyPolicy, apex_epsilons
from rlfleet.algorithms.params import load_flat, param_count
from rlfleet.envs import check_discrete, make_vector_env
from rlfleet.models import build_q_network
from rlfleet.replay import NStepAccumulator
from rlfleet.runtime.apex_config import ApexConfig
from rlfleet.runtime.links import CMD_STOP
from rlfleet.runtime.stores import wants_one_step
from rlfleet.transport.codec import encode

TRANSITION_FIELDS = ("obs", "action", "reward", "discount", "next_obs")
ONE_STEP_FIELDS = ("reward_1", "discount_1", "next_obs_1")


class ParamSource(Protocol):
    def fetch_if_newer(self, have_version: int, out: np.ndarray) -> int | None: ...


class Outbox(Protocol):
    def push(self, payload: bytes) -> None: ...


class StatusLink(Protocol):
    def send(self, kind: str, **meta: Any) -> None: ...
    def poll_command(self, timeout: float = 0.0) -> str | None: ...


def actor_epsilons(config: ApexConfig, actor_index: int, num_actors: int) -> np.ndarray:
    """Epsilons of this actor's K environments (one per actor, or spread over all envs)."""
    k = config.env.envs_per_actor
    a = config.actor
    if a.epsilon_per == "env":
        all_eps = apex_epsilons(num_actors * k, a.epsilon, a.epsilon_alpha)
        return all_eps[actor_index * k : (actor_index + 1) * k]
    return np.full(k, apex_epsilons(num_actors, a.epsilon, a.epsilon_alpha)[actor_index])


class LocalBuffer:
    """Preallocated staging area for transitions before priorities are computed and pushed."""

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype,
        one_step: bool = False,
    ) -> None:
        self.capacity = capacity
        self.size = 0
        self.data = {
            "obs": np.empty((capacity, *obs_shape), obs_dtype),
            "action": np.empty(capacity, np.int64),
            "reward": np.empty(capacity, np.float32),
            "discount": np.empty(capacity, np.float32),
            "next_obs": np.empty((capacity, *obs_shape), obs_dtype),
        }
        if one_step:  # DQfD's 1-step target next to the n-step one
            self.data.update(
                reward_1=np.empty(capacity, np.float32),
                discount_1=np.empty(capacity, np.float32),
                next_obs_1=np.empty((capacity, *obs_shape), obs_dtype),
            )

    def extend(self, transitions: dict[str, np.ndarray]) -> None:
        n = len(transitions["action"])
        if n == 0:
            return
        end = self.size + n
        if end > self.capacity:  # cannot happen when capacity >= push_size + envs_per_actor
            raise RuntimeError(f"local buffer overflow: {end} > {self.capacity}")
        for name, arr in self.data.items():
            arr[self.size : end] = transitions[name]
        self.size = end

    def view(self) -> dict[str, np.ndarray]:
        return {name: arr[: self.size] for name, arr in self.data.items()}


@dataclass
class ActorStats:
    env_steps: int = 0
    steps_since_push: int = 0
    pushes: int = 0
    push_seconds: float = 0.0
    episode_returns: list[float] | None = None
    episode_lengths: list[int] | None = None


def run_actor(
    config: ApexConfig,
    actor_index: int,
    num_actors: int,
    seed: int,
    outbox: Outbox,
    params: ParamSource,
    link: StatusLink,
) -> None:
    """Act until the launcher says stop (or the link drops)."""
    k = config.env.envs_per_actor
    venv = make_vector_env(
        config.env.id,
        k,
        seed,
        max_episode_steps=config.env.max_episode_steps or None,
        env_kwargs=config.env.kwargs or None,
    )
    check_discrete(venv.action_space, config.env.id, algorithm="Ape-X DQN")
    net = build_q_network(
        venv.obs_shape,
        venv.num_actions,
        torso=config.model.torso,
        hidden=config.model.hidden,
        dueling=config.model.dueling,
    )
    net.eval()
    policy = EpsilonGreedyPolicy(net, venv.num_actions, seed)
    flat = np.empty(param_count(net), np.float32)
    version = 0
    while version == 0:  # act with the learner's initial weights, not our own random ones
        got = params.fetch_if_newer(0, flat)
        if got is not None:
            version = got
            load_flat(net, flat)
        elif link.poll_command(0.05) == CMD_STOP:
            venv.close()
            return
    epsilons = actor_epsilons(config, actor_index, num_actors)
    one_step = wants_one_step(config)
    acc = NStepAccumulator(
        k, config.algo.n_step, config.algo.gamma, venv.obs_shape, venv.obs_dtype, one_step
    )
    buffer = LocalBuffer(
        config.actor.push_size + k * config.algo.n_step, venv.obs_shape, venv.obs_dtype, one_step
    )
    # Ape-X DQfD learns in h-space: the actor's priorities use the same transformed target
    rescale_eps = 1e-2 if config.dqfd.enabled and config.dqfd.is_transformed else None
    stats = ActorStats(episode_returns=[], episode_lengths=[])
    obs = venv.reset()
    last_report = time.monotonic()
    batch_steps = 0
    while True:
        actions = policy.act(obs, epsilons)
        step = venv.step(actions)
        buffer.extend(
            acc.step(obs, actions, step.reward, step.terminated, step.truncated, step.next_obs)
        )
        obs = step.obs
        batch_steps += 1
        stats.env_steps += k
        stats.steps_since_push += k
        done = step.terminated | step.truncated
        if done.any():
            stats.episode_returns.extend(step.episode_returns[done].tolist())
            stats.episode_lengths.extend(step.episode_lengths[done].tolist())
        if buffer.size >= config.actor.push_size:
            _push(
                policy, buffer, outbox, stats, version, actor_index, config.algo.double, rescale_eps
            )
        if batch_steps % config.actor.param_fetch_interval == 0:
            got = params.fetch_if_newer(version, flat)
            if got is not None:
                version = got
                load_flat(net, flat)
        now = time.monotonic()
        if now - last_report >= 0.5:
            link.send(
                "actor_stats",
                env_steps=stats.env_steps,
                episode_returns=stats.episode_returns,
                episode_lengths=stats.episode_lengths,
                policy_version=version,
                push_latency_ms=1000.0 * stats.push_seconds / max(stats.pushes, 1),
                # outboxes that buffer across outages count what they dropped / hold back;
                # a pipe does neither, so it reports zeros
                dropped=int(getattr(outbox, "dropped", 0)),
                backlog=int(getattr(outbox, "backlog", 0)),
            )
            stats.episode_returns, stats.episode_lengths = [], []
            stats.push_seconds, stats.pushes = 0.0, 0
            last_report = now
            if link.poll_command() == CMD_STOP:
                break
    venv.close()


def _push(
    policy: EpsilonGreedyPolicy,
    buffer: LocalBuffer,
    outbox: Outbox,
    stats: ActorStats,
    version: int,
    actor_index: int,
    double: bool,
    rescale_eps: float | None = None,
) -> None:
    batch = buffer.view()
    priorities = policy.initial_priorities(batch, double, rescale_eps).astype(np.float32)
    payload = encode(
        "experience",
        {**batch, "priority": priorities},
        {"actor": actor_index, "policy_version": version, "env_steps": stats.steps_since_push},
    )
    start = time.perf_counter()
    outbox.push(payload)
    stats.push_seconds += time.perf_counter() - start
    stats.pushes += 1
    stats.steps_since_push = 0
    buffer.size = 0
