"""The SCST actor's acting step: decode lockstep batches of the sequence environment, the first
episode of every group greedily and the others by sampling, and send each finished batch with
its rewards (:mod:`rlfleet.agents.scst.messages`). Parameters are refreshed between batches, so
a whole batch is decoded by one version. In the XE phase actors have nothing to do and wait."""

from __future__ import annotations

from typing import Any

import numpy as np

from rlfleet.agents.scst.messages import encode_sequences
from rlfleet.agents.scst.network import StepDecoder, build_network, task_of
from rlfleet.agents.spec import ActorSlot
from rlfleet.envs.sequences.env import ObsLayout
from rlfleet.envs.spec import EnvSpec
from rlfleet.envs.vector import StepResult
from rlfleet.models.params import load_flat, param_count


class ScstActing:
    """Greedy + k-sample decoding of one actor's lockstep batches."""

    def __init__(self, config: Any, env: EnvSpec, slot: ActorSlot, seed: int) -> None:
        self.config = config
        self.member = slot.member
        self.net = build_network(config, env)
        self.net.eval()
        self.param_count = param_count(self.net)
        task = task_of(config)
        self.layout = ObsLayout(task.max_source_len)
        self.decoder = StepDecoder(self.net, self.layout, seed)
        k = config.env.envs_per_actor
        self.sample = np.ones(k, bool)
        self.sample[0 :: config.group_size] = False  # each group's first episode is greedy
        self.tokens = np.zeros((k, task.max_output_len), np.int32)
        self.log_prob = np.zeros((k, task.max_output_len), np.float32)
        self.version = 0
        self.batch_done = False
        self.idle = config.scst.phase == "xe"

    def load_params(self, flat: np.ndarray, version: int) -> None:
        load_flat(self.net, flat)
        self.version = version

    def begin(self, obs: np.ndarray) -> None:
        return None

    def act(self, obs: np.ndarray) -> np.ndarray:
        t = int(self.layout.t(obs)[0])  # lockstep: every row is at the same step
        tokens, log_prob = self.decoder.act(obs, self.sample)
        live = ~self.layout.ended(obs)
        self.tokens[:, t] = np.where(live, tokens, 0)
        self.log_prob[:, t] = np.where(live, log_prob, 0.0)
        return tokens

    def observe(self, step: StepResult) -> list[bytes]:
        if not step.terminated.all():
            return []
        final = step.next_obs
        arrays = {
            "src": self.layout.source(final).astype(np.int32),
            "row": self.layout.row(final).astype(np.int64),
            "tokens": self.tokens.copy(),
            "length": step.episode_lengths.astype(np.int64),
            "log_prob": self.log_prob.copy(),
            "reward": step.reward.astype(np.float32),
        }
        self.tokens[:] = 0
        self.log_prob[:] = 0.0
        self.batch_done = True
        return [encode_sequences(arrays, self.member, self.version)]

    def wants_params(self) -> bool:
        """Between batches only: a batch is decoded by one version."""
        done, self.batch_done = self.batch_done, False
        return done

    def waiting(self) -> bool:
        return self.idle
