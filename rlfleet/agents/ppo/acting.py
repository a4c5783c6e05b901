"""The PPO actor's acting step: sample from the current policy, keep the behaviour
log-probability of every action, send one rollout of T steps of the K environments per message.
The loop around it is :func:`rlfleet.agents.common.actor.run_actor`.

Synchronous mode (the default): an actor collects its quota of rollouts with one policy version
(``PPOConfig.quota``: the learner's rollouts per update split over the actors), then waits
(:meth:`PPOActing.waiting`) until the learner publishes the next version, so every rollout the
learner trains on was acted by the policy it is improving. The environments carry on across
versions (an episode may span several policies), as in the PPO paper.

Asynchronous mode (APPO): actors never wait and check for newer parameters after every rollout;
the learner corrects for the lag with the behaviour log-probabilities.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlfleet.agents.common.heads import HeadSampler
from rlfleet.agents.common.trajectories import TrajectoryBuilder
from rlfleet.agents.ppo.messages import encode_rollout
from rlfleet.agents.ppo.network import build_network
from rlfleet.agents.spec import ActorSlot
from rlfleet.envs.spec import EnvSpec
from rlfleet.envs.vector import StepResult
from rlfleet.models.params import load_flat, param_count


class PPOActing:
    """Stochastic acting and rollout building for one PPO actor."""

    def __init__(self, config: Any, env: EnvSpec, slot: ActorSlot, seed: int) -> None:
        self.member = slot.member
        self.net = build_network(config, env)
        self.net.eval()
        self.param_count = param_count(self.net)
        head = self.net.policy
        self.sampler = HeadSampler(self.net, seed, params=self.net.policy_params)
        self.builder = TrajectoryBuilder(
            config.env.envs_per_actor,
            config.algo.rollout_length,
            env.obs_shape,
            env.obs_dtype,
            config.algo.gamma,
            fields={
                "action": (head.action_shape, head.action_dtype),
                "log_prob": ((), np.float32),
            },
        )
        self.sync = config.algo.mode == "sync"
        self.quota = config.quota(slot.count)
        self.version = 0
        self.sent = 0  # rollouts acted by this version
        self._fetch_due = False
        self._step: dict[str, np.ndarray] = {}

    def load_params(self, flat: np.ndarray, version: int) -> None:
        load_flat(self.net, flat)
        self.version = version
        self.sent = 0

    def begin(self, obs: np.ndarray) -> None:
        self.builder.start(obs)

    def act(self, obs: np.ndarray) -> np.ndarray:
        sampled = self.sampler.sample(self.builder.current_obs)
        self._step = {"action": sampled.raw, "log_prob": sampled.log_prob}
        return sampled.env

    def observe(self, step: StepResult) -> list[bytes]:
        rollout = self.builder.add(
            self._step,
            step.reward,
            step.terminated,
            step.truncated,
            next_obs=step.obs,
            final_obs=step.next_obs,
            policy_version=self.version,
        )
        if rollout is None:
            return []
        self.sent += 1
        self._fetch_due = not self.sync
        return [encode_rollout(rollout, self.member)]

    def waiting(self) -> bool:
        """sync: this version's quota is sent; wait for the learner's next policy."""
        return self.sync and self.sent >= self.quota

    def wants_params(self) -> bool:
        due, self._fetch_due = self._fetch_due, False
        return due
