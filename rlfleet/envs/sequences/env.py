"""Sequence generation as an environment: K episodes decoded in lockstep, one token per step.

An episode reads one source and writes an output token by token (the action is a target-vocabulary
id); it ends at end-of-sequence or at the length cap, and the whole output is rewarded once by
the task's metric. The K episodes of a batch start together and the batch ends when the last of
them has ended: an episode that ended earlier sits in an absorbing state (its actions ignored,
reward 0) until then, which is how batched decoders work anyway and lets groups of
``group_size`` episodes share one source (SCST's greedy decode and k samples of one word).
At the batch's last step every episode is ``terminated`` with its reward, and the observations
are already the next batch's first ones (the same autoreset contract as every rlfleet env).

Observation row (int64): ``[source ids (S, padded), previous token, t, ended, source row]``,
parsed by :class:`ObsLayout`. Training draws sources from the train split at random (seeded);
``training=False`` (the evaluator) walks the dev split in order from its first word, so every
evaluation scores the same words.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from rlfleet.envs.options import lockstep_group
from rlfleet.envs.sequences.corpus import BOS, EOS
from rlfleet.envs.sequences.task import SeqOptions, load_task, score
from rlfleet.envs.vector import StepResult
from rlfleet.errors import EnvError

__all__ = ["ObsLayout", "SequenceBatchEnv"]


@dataclass(frozen=True)
class ObsLayout:
    """Column positions in an observation row of a task with sources of up to ``S`` tokens."""

    S: int

    @property
    def width(self) -> int:
        return self.S + 4

    def source(self, obs: np.ndarray) -> np.ndarray:
        return obs[:, : self.S]

    def prev(self, obs: np.ndarray) -> np.ndarray:
        return obs[:, self.S]

    def t(self, obs: np.ndarray) -> np.ndarray:
        return obs[:, self.S + 1]

    def ended(self, obs: np.ndarray) -> np.ndarray:
        return obs[:, self.S + 2].astype(bool)

    def row(self, obs: np.ndarray) -> np.ndarray:
        return obs[:, self.S + 3]


class SequenceBatchEnv:
    """K sequence episodes stepped in lockstep (module docstring)."""

    def __init__(
        self, env_id: str, num_envs: int, seed: int, kwargs: dict | None, training: bool = True
    ) -> None:
        self.options = SeqOptions.parse(kwargs)
        self.task = load_task(self.options)
        self.env_id = env_id
        self.num_envs = int(num_envs)
        self.group = lockstep_group(
            env_id, self.num_envs, self.options.group_size, training, "source"
        )
        self.training = training
        self.part = self.task.train if training else self.task.dev
        self.layout = ObsLayout(self.task.max_source_len)
        self.obs_shape = (self.layout.width,)
        self.obs_dtype = np.dtype(np.int64)
        self.action_space = gym.spaces.Discrete(self.task.tgt_vocab_size)
        self.observation_space = gym.spaces.Box(
            0, max(self.task.src_vocab_size, len(self.part)), self.obs_shape, np.int64
        )
        self.cap = self.task.max_output_len
        self.rng = np.random.default_rng(seed)
        self._next_row = 0  # evaluation walks the dev split in order
        k = self.num_envs
        self.obs = np.zeros((k, self.layout.width), np.int64)
        self.out = np.zeros((k, self.cap), np.int32)
        self.length = np.zeros(k, np.int64)  # tokens written, EOS included
        self.ended = np.zeros(k, bool)
        self.t = 0

    # ---- batches -----------------------------------------------------------------------------
    def _draw_rows(self) -> np.ndarray:
        groups = self.num_envs // self.group
        if self.training:
            rows = self.rng.integers(0, len(self.part), groups)
        else:
            rows = (self._next_row + np.arange(groups)) % len(self.part)
            self._next_row = int(rows[-1] + 1) % len(self.part)
        return np.repeat(rows, self.group)

    def _begin(self) -> np.ndarray:
        rows = self._draw_rows()
        lay, s = self.layout, self.part.src.shape[1]
        self.obs[:] = 0
        self.obs[:, :s] = self.part.src[rows]
        self.obs[:, lay.S] = BOS
        self.obs[:, lay.S + 3] = rows
        self.out[:] = 0
        self.length[:] = 0
        self.ended[:] = False
        self.t = 0
        return self.obs.copy()

    def reset(self) -> np.ndarray:
        return self._begin()

    def step(self, actions: np.ndarray) -> StepResult:
        actions = np.asarray(actions, np.int64).reshape(self.num_envs)
        live = ~self.ended
        if ((actions[live] < 0) | (actions[live] >= self.action_space.n)).any():
            bad = actions[live][(actions[live] < 0) | (actions[live] >= self.action_space.n)][0]
            raise EnvError(f"{self.env_id}: token {bad} is outside 0..{self.action_space.n - 1}")
        self.out[live, self.t] = actions[live]
        self.length[live] += 1
        self.t += 1
        self.ended |= live & ((actions == EOS) | (self.t >= self.cap))
        lay = self.layout
        self.obs[:, lay.S] = np.where(live, actions, self.obs[:, lay.S])
        self.obs[:, lay.S + 1] = self.t
        self.obs[:, lay.S + 2] = self.ended
        k = self.num_envs
        reward = np.zeros(k, np.float32)
        done = np.zeros(k, bool)
        returns = np.full(k, np.nan)
        lengths = np.zeros(k, np.int64)
        if self.ended.all():
            rows = lay.row(self.obs)
            words = self.length - (self.out[np.arange(k), self.length - 1] == EOS)
            reward = score(self.part, rows, self.out, words, self.options.reward)
            done[:] = True
            returns = reward.astype(np.float64)
            lengths = self.length.copy()
            final = self.obs.copy()
            return StepResult(self._begin(), final, reward, done, ~done, returns, lengths)
        obs = self.obs.copy()
        return StepResult(obs, obs, reward, done, done.copy(), returns, lengths)

    def close(self) -> None:
        return None
