"""The actor's half of the Ape-X family (Horgan et al. 2018): per-explorer exploration on the
paper's ladder, n-step transitions staged locally, initial priorities computed on the actor's own
network copy, and pushes of ``actor.push_size`` transitions at a time.

Ape-X DQN (``agents/apex``) and Ape-X DPG (``agents/dpg``) act differently (epsilon-greedy over
Q-values, or ``mu(s)`` plus Gaussian noise in a Box) and compute different TD errors; they hand
:class:`PrioritizedActing` those two functions and their transitions' fields, and everything
else -- staging, priorities on push, messages, parameter versions and fetch cadence -- is here.
The learner's half is :mod:`rlfleet.agents.common.prioritized`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from rlfleet.agents.common.prioritized import transition_fields
from rlfleet.envs.vector import StepResult
from rlfleet.math import exploration_ladder
from rlfleet.models.params import load_flat, param_count
from rlfleet.replay import NStepAccumulator
from rlfleet.transport.codec import encode

__all__ = ["PrioritizedActing", "StagingBuffer", "ladder_slice", "staging_fields"]

#: ``behaviour(obs [K, ...], batch_step) -> actions [K, ...]``: the agent's exploring policy.
Behaviour = Callable[[np.ndarray, int], np.ndarray]
#: ``priorities(batch) -> |TD| [N]``: the initial priorities of staged transitions.
Priorities = Callable[[Mapping[str, np.ndarray]], np.ndarray]


def ladder_slice(
    per: str, base: float, alpha: float, actor_index: int, num_actors: int, envs_per_actor: int
) -> np.ndarray:
    """This actor's ``envs_per_actor`` values on the exploration ladder
    (:func:`rlfleet.math.exploration_ladder`): one rung per actor (``per = "actor"``, the
    paper), or one per environment across the whole fleet (``per = "env"``)."""
    k = envs_per_actor
    if per == "env":
        every = exploration_ladder(num_actors * k, base, alpha)
        return every[actor_index * k : (actor_index + 1) * k]
    return np.full(k, exploration_ladder(num_actors, base, alpha)[actor_index])


def staging_fields(
    obs_shape: tuple[int, ...],
    obs_dtype: np.dtype,
    action_shape: tuple[int, ...] = (),
    action_dtype: np.dtype | type = np.int64,
) -> dict[str, tuple[tuple[int, ...], Any]]:
    """``name -> (shape, dtype)`` of an n-step transition, as the replay stores it
    (:func:`~rlfleet.agents.common.prioritized.transition_fields`)."""
    fields = transition_fields(obs_shape, obs_dtype, action_shape, action_dtype)
    return {name: (spec.shape, spec.dtype) for name, spec in fields.items()}


class StagingBuffer:
    """An actor's preallocated staging area: transitions wait here until their initial
    priorities are computed and they are pushed as one message."""

    def __init__(self, capacity: int, fields: Mapping[str, tuple[tuple[int, ...], Any]]) -> None:
        """``fields``: name -> (per-item shape, dtype)."""
        self.capacity = capacity
        self.size = 0
        self.data = {
            name: np.empty((capacity, *shape), dtype) for name, (shape, dtype) in fields.items()
        }

    def extend(self, transitions: Mapping[str, np.ndarray]) -> None:
        n = len(transitions["action"])
        if n == 0:
            return
        end = self.size + n
        if end > self.capacity:  # cannot happen when capacity >= push_size + envs * n_step
            raise RuntimeError(f"local buffer overflow: {end} > {self.capacity}")
        for name, arr in self.data.items():
            arr[self.size : end] = transitions[name]
        self.size = end

    def view(self) -> dict[str, np.ndarray]:
        return {name: arr[: self.size] for name, arr in self.data.items()}


class PrioritizedActing:
    """The acting step of an Ape-X family actor (the loop around it is
    :func:`rlfleet.agents.common.actor.run_actor`).

    Args:
        config: the run's config (``actor.push_size``, ``actor.param_fetch_interval``,
            ``algo.n_step``, ``env.envs_per_actor``).
        net: the actor's network copy; published parameters are loaded into it.
        behaviour: the agent's exploring policy (called under ``torch.inference_mode``).
        priorities: the agent's initial priorities of a staged batch, on ``net``.
        accumulator: builds the agent's n-step transitions from the steps.
        fields: the staged transitions' fields, ``name -> (shape, dtype)``.
        kind: the experience message's kind.
        member: this actor's name in its messages.
    """

    def __init__(
        self,
        config: Any,
        net: torch.nn.Module,
        *,
        behaviour: Behaviour,
        priorities: Priorities,
        accumulator: NStepAccumulator,
        fields: Mapping[str, tuple[tuple[int, ...], Any]],
        kind: str,
        member: str,
    ) -> None:
        self.config = config
        self.net = net
        self.param_count = param_count(net)
        self.behaviour = behaviour
        self.priorities = priorities
        self.acc = accumulator
        k, n = config.env.envs_per_actor, config.algo.n_step
        self.buffer = StagingBuffer(config.actor.push_size + k * n, fields)
        self.kind = kind
        self.member = member
        self.version = 0
        self.batch_steps = 0
        self.steps_since_push = 0
        self._obs: np.ndarray | None = None
        self._actions: np.ndarray | None = None

    def load_params(self, flat: np.ndarray, version: int) -> None:
        load_flat(self.net, flat)
        self.version = version

    def begin(self, obs: np.ndarray) -> None:
        self._obs = obs

    @torch.inference_mode()  # no autograd records on the actor: noticeably faster
    def act(self, obs: np.ndarray) -> np.ndarray:
        self._obs = obs
        self._actions = self.behaviour(obs, self.batch_steps)
        return self._actions

    def observe(self, step: StepResult) -> list[bytes]:
        self.buffer.extend(
            self.acc.step(
                self._obs,
                self._actions,
                step.reward,
                step.terminated,
                step.truncated,
                step.next_obs,
            )
        )
        self.batch_steps += 1
        self.steps_since_push += len(step.reward)
        if self.buffer.size < self.config.actor.push_size:
            return []
        return [self._encode()]

    def waiting(self) -> bool:
        return False  # asynchronous: acts with whatever parameters it has

    def wants_params(self) -> bool:
        return self.batch_steps % self.config.actor.param_fetch_interval == 0

    def _encode(self) -> bytes:
        batch = self.buffer.view()
        priorities = np.asarray(self.priorities(batch)).astype(np.float32)
        payload = encode(
            self.kind,
            {**batch, "priority": priorities},
            {
                "actor": self.member,
                "policy_version": self.version,
                "env_steps": self.steps_since_push,
            },
        )
        self.steps_since_push = 0
        self.buffer.size = 0
        return payload
