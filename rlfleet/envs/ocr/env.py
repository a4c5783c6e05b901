"""Scene-text recognition as a sequence environment: K word images read in lockstep, one CTC
output column per step.

An episode shows one word image and the agent writes one class per output column (the action:
0 = blank, 1.. = characters), as many as the image has columns (its width / 4). The path is then
collapsed (CTC: runs merged, blanks dropped) and rewarded once with minus its character error
rate against the word. This is the contract of :class:`rlfleet.envs.sequences.env.SequenceBatchEnv`
(episodes of a batch start together; one that ended waits in an absorbing state; at the last step
every episode is ``terminated`` with its reward and the observations are already the next
batch's), so the sequence learner's actors drive it unchanged: groups of ``group_size`` episodes
share one image (the greedy decode and k samples).

Observation row (int32): ``[pixels (H * W_max, row-major, 0 right of the width), width, t,
ended, word row]``, parsed by :class:`OcrLayout`. Training draws train words at random and
renders them from the env's seed; ``training=False`` (the evaluator) walks the held-out test set.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from rlfleet.envs.ocr.task import OcrOptions, load_task
from rlfleet.envs.options import lockstep_group
from rlfleet.envs.vector import StepResult
from rlfleet.errors import EnvError

__all__ = ["OCR_IDS", "OcrBatchEnv", "OcrLayout"]

#: Environment ids of OCR tasks (options: :class:`~rlfleet.envs.ocr.task.OcrOptions`).
OCR_IDS = ("OCR/Words-v0",)


@dataclass(frozen=True)
class OcrLayout:
    """Column positions in an observation row of ``H x W`` images."""

    H: int
    W: int

    @property
    def pixels(self) -> int:
        return self.H * self.W

    @property
    def width(self) -> int:
        return self.pixels + 4

    def images(self, obs: np.ndarray) -> np.ndarray:
        return obs[:, : self.pixels].astype(np.uint8).reshape(-1, self.H, self.W)

    def image_width(self, obs: np.ndarray) -> np.ndarray:
        return obs[:, self.pixels].astype(np.int64)

    def t(self, obs: np.ndarray) -> np.ndarray:
        return obs[:, self.pixels + 1]

    def ended(self, obs: np.ndarray) -> np.ndarray:
        return obs[:, self.pixels + 2].astype(bool)

    def row(self, obs: np.ndarray) -> np.ndarray:
        return obs[:, self.pixels + 3].astype(np.int64)


class OcrBatchEnv:
    """K OCR episodes stepped in lockstep (module docstring)."""

    def __init__(
        self, env_id: str, num_envs: int, seed: int, kwargs: dict | None, training: bool = True
    ) -> None:
        self.options = OcrOptions.parse(kwargs)
        self.task = load_task(self.options)
        self.env_id = env_id
        self.num_envs = int(num_envs)
        self.group = lockstep_group(
            env_id, self.num_envs, self.options.group_size, training, "image"
        )
        self.training = training
        task = self.task
        self.layout = OcrLayout(task.height, task.max_width)
        self.obs_shape = (self.layout.width,)
        self.obs_dtype = np.dtype(np.int32)
        self.action_space = gym.spaces.Discrete(task.num_classes)
        self.observation_space = gym.spaces.Box(
            0, max(255, len(task.train_words), task.max_width), self.obs_shape, np.int32
        )
        self.seed = int(seed)
        self.rng = np.random.default_rng(seed)
        self._drawn = 0  # images rendered from this env's stream
        self._next = 0  # evaluation walks the test set in order
        k = self.num_envs
        self.obs = np.zeros((k, self.layout.width), np.int32)
        self.paths = np.zeros((k, task.max_columns), np.int64)
        self.columns = np.zeros(k, np.int64)
        self.t = 0

    def _begin(self) -> np.ndarray:
        groups, task = self.num_envs // self.group, self.task
        if self.training:
            rows = self.rng.integers(0, len(task.train_words), groups)
            ids = self._drawn + np.arange(groups)
            self._drawn += groups
            images, widths = task.train_images(rows, self.seed, ids)
        else:
            test_images, test_widths, test_rows = task.test_set
            pick = (self._next + np.arange(groups)) % len(test_rows)
            self._next = int(pick[-1] + 1) % len(test_rows)
            images, widths, rows = test_images[pick], test_widths[pick], test_rows[pick]
        lay, g = self.layout, self.group
        self.obs[:, : lay.pixels] = np.repeat(images.reshape(groups, -1), g, axis=0)
        self.obs[:, lay.pixels] = np.repeat(widths, g)
        self.obs[:, lay.pixels + 1 : lay.pixels + 3] = 0
        self.obs[:, lay.pixels + 3] = np.repeat(rows, g)
        self.columns = np.repeat(task.columns(widths), g)
        self.paths[:] = 0
        self.t = 0
        return self.obs.copy()

    def reset(self) -> np.ndarray:
        return self._begin()

    def step(self, actions: np.ndarray) -> StepResult:
        actions = np.asarray(actions, np.int64).reshape(self.num_envs)
        lay, k = self.layout, self.num_envs
        live = self.t < self.columns
        bad = live & ((actions < 0) | (actions >= self.action_space.n))
        if bad.any():
            raise EnvError(
                f"{self.env_id}: class {actions[bad][0]} is outside 0..{self.action_space.n - 1}"
            )
        self.paths[live, self.t] = actions[live]
        self.t += 1
        ended = self.t >= self.columns
        self.obs[:, lay.pixels + 1] = self.t
        self.obs[:, lay.pixels + 2] = ended
        if ended.all():
            rows = lay.row(self.obs)
            test = not self.training
            dist, ref_len, _ = self.task.errors(self.paths, self.columns, rows, test=test)
            reward = -np.minimum(dist / np.maximum(ref_len, 1), 1.0).astype(np.float32)
            done = np.ones(k, bool)
            final = self.obs.copy()
            lengths = self.columns.copy()
            return StepResult(
                self._begin(), final, reward, done, ~done, reward.astype(np.float64), lengths
            )
        obs = self.obs.copy()
        zeros = np.zeros(k, bool)
        return StepResult(
            obs, obs, np.zeros(k, np.float32), zeros, zeros.copy(), np.full(k, np.nan),
            np.zeros(k, np.int64),
        )  # fmt: skip

    def close(self) -> None:
        return None
