"""The SCST actor's acting step: decode lockstep batches of the sequence environment, the first
episode of every group greedily and the others by sampling, and send each finished batch with
its rewards (:mod:`rlfleet.agents.scst.messages`). Parameters are refreshed between batches, so
a whole batch is decoded by one version. In the XE phase actors have nothing to do and wait."""

from __future__ import annotations

from typing import Any

import numpy as np

from rlfleet.agents.scst.family import family_of
from rlfleet.agents.scst.messages import encode_sequences
from rlfleet.agents.spec import ActorSlot
from rlfleet.envs.spec import EnvSpec
from rlfleet.envs.vector import StepResult
from rlfleet.models.params import load_flat, param_count


class ScstActing:
    """Greedy + k-sample decoding of one actor's lockstep batches."""

    def __init__(self, config: Any, env: EnvSpec, slot: ActorSlot, seed: int) -> None:
        self.config = config
        self.member = slot.member
        family = family_of(config)
        self.net = family.build_network()
        self.net.eval()
        self.param_count = param_count(self.net)
        self.decoder = family.decoder(self.net, seed, config.group_size)
        k = config.env.envs_per_actor
        self.sample = np.ones(k, bool)
        self.sample[0 :: config.group_size] = False  # each group's first episode is greedy
        self.tokens = np.zeros((k, family.max_output_len), np.int32)
        self.log_prob = np.zeros((k, family.max_output_len), np.float32)
        self.version = 0
        self.batch_done = False
        self.idle = config.scst.phase == "xe"

    def load_params(self, flat: np.ndarray, version: int) -> None:
        load_flat(self.net, flat)
        self.version = version

    def begin(self, obs: np.ndarray) -> None:
        return None

    def act(self, obs: np.ndarray) -> np.ndarray:
        t = int(self.decoder.t(obs)[0])  # lockstep: every row is at the same step
        tokens, log_prob = self.decoder.act(obs, self.sample)
        live = ~self.decoder.ended(obs)
        self.tokens[:, t] = np.where(live, tokens, 0)
        self.log_prob[:, t] = np.where(live, log_prob, 0.0)
        return tokens

    def observe(self, step: StepResult) -> list[bytes]:
        if not step.terminated.all():
            return []
        final = step.next_obs
        arrays = {
            **self.decoder.sources(final),
            "row": self.decoder.row(final).astype(np.int64),
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


class GreedyPolicy:
    """The evaluator's policy (``spec.make_eval_policy``): the family's greedy decoding."""

    def __init__(self, net: Any, env: EnvSpec, config: Any, seed: int) -> None:
        self.decoder = family_of(config).decoder(net, seed, 1)

    def act(self, obs: np.ndarray, epsilons: np.ndarray | None = None) -> np.ndarray:
        return self.decoder.act(obs)[0]

    def reset(self, done: np.ndarray | None) -> None:
        if done is None:
            self.decoder.reset()
