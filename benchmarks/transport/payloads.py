"""What ``rlfleet bench transport`` sends: the run name, transitions per push, observation
shapes and the synthetic experience, sample and priority messages (encoded as actors, a replay
service and a learner would), plus the codecs this install can use."""

from __future__ import annotations

import importlib.util

import numpy as np

from rlfleet.errors import RlfleetError

RUN = "bench"
TRANSITIONS = 50
N_STEP = 3
VECTOR_OBS = (4,)  # CartPole
FRAME_OBS = (4, 84, 84)  # Atari / Nature DQN stack
#: The throughput workers' queue bound: never reached (the trimmer keeps the list short), so
#: the outbox never waits for room -- the path an actor takes while the learner keeps up.
UNBOUNDED_QUEUE = 1 << 30


def available_codecs() -> list[str]:
    """Codecs usable here: raw always, lz4 / zstd when their packages are installed."""
    found = ["raw"]
    if importlib.util.find_spec("lz4") is not None:
        found.append("lz4")
    if importlib.util.find_spec("zstandard") is not None:
        found.append("zstd")
    return found


def synthetic_frames(count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` Pong-like 84x84 uint8 frames: a flat background, two paddles and a ball moving
    between frames. Real game frames compress like this; random bytes would not compress at all."""
    frames = np.full((count, 84, 84), 87, np.uint8)
    frames[:, :6, :] = 236  # score bar
    left, right = 30.0, 40.0
    ball = np.array([42.0, 42.0])
    speed = rng.uniform(-2.0, 2.0, size=2) + np.array([1.5, 0.5])
    for i in range(count):
        left = float(np.clip(left + rng.normal(0, 2), 6, 68))
        right = float(np.clip(right + rng.normal(0, 2), 6, 68))
        ball += speed
        for axis in (0, 1):
            if not 7 <= ball[axis] <= 81:
                speed[axis] = -speed[axis]
                ball[axis] = np.clip(ball[axis], 7, 81)
        frames[i, int(left) : int(left) + 16, 8:12] = 213
        frames[i, int(right) : int(right) + 16, 72:76] = 92
        y, x = int(ball[0]), int(ball[1])
        frames[i, y : y + 2, x : x + 2] = 236
    return frames


def experience_batch(kind: str, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One actor push of ``n`` n-step transitions: the arrays ``runtime.actor`` sends."""
    if kind == "vector":
        seq = rng.standard_normal((n + N_STEP, *VECTOR_OBS)).astype(np.float32)
        obs, next_obs = seq[:n], seq[N_STEP:]
    elif kind == "frames":
        single = synthetic_frames(n + N_STEP + FRAME_OBS[0], rng)
        stacks = np.lib.stride_tricks.sliding_window_view(single, FRAME_OBS[0], axis=0)
        stacks = np.moveaxis(stacks, -1, 1)  # (count, 4, 84, 84)
        obs, next_obs = stacks[:n].copy(), stacks[N_STEP : N_STEP + n].copy()
    else:
        raise RlfleetError(f"unknown observation kind {kind!r}; valid: vector, frames")
    return {
        "obs": obs,
        "next_obs": next_obs,
        "action": rng.integers(0, 6, n).astype(np.int64),
        "reward": rng.standard_normal(n).astype(np.float32),
        "discount": np.full(n, 0.99**N_STEP, np.float32),
        "priority": rng.uniform(0.1, 2.0, n).astype(np.float32),
    }


def obs_spec(kind: str) -> tuple[tuple[int, ...], np.dtype]:
    """Per-item observation shape and dtype of an observation kind."""
    return (
        (VECTOR_OBS, np.dtype(np.float32)) if kind == "vector" else (FRAME_OBS, np.dtype(np.uint8))
    )


def experience_payload(kind: str, compress: str, seed: int = 0, n: int = TRANSITIONS) -> bytes:
    """An encoded experience message, as an actor pushes it."""
    from rlfleet.transport.codec import encode

    batch = experience_batch(kind, n, np.random.default_rng(seed))
    meta = {"actor": 0, "policy_version": 1, "env_steps": n}
    return encode("experience", batch, meta, compress)


def sample_payload(kind: str, compress: str, batch_size: int, seed: int = 0) -> bytes:
    """What a replay service would send per learner update: one sampled batch with importance
    weights and the slots' indices (for the priority update that comes back)."""
    from rlfleet.transport.codec import encode

    batch = experience_batch(kind, batch_size, np.random.default_rng(seed))
    del batch["priority"]
    batch["weight"] = np.ones(batch_size, np.float32)
    batch["index"] = np.arange(batch_size, dtype=np.int64)
    return encode("sample", batch, {"version": 1}, compress)


def priority_payload(batch_size: int) -> bytes:
    """The learner's answer to a sampled batch: new priorities for the sampled slots."""
    from rlfleet.transport.codec import encode

    arrays = {
        "index": np.arange(batch_size, dtype=np.int64),
        "priority": np.ones(batch_size, np.float32),
    }
    return encode("priorities", arrays, {"version": 1})
