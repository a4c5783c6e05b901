"""Frame-stacked fields: byte-exact reconstruction and deduplication under realistic streams."""

from __future__ import annotations

import numpy as np
import pytest

from rlfleet.errors import ReplayError
from rlfleet.replay import FieldSpec, FrameStackSpec, PrioritizedReplay, UniformReplay

STACK, NSTEP = 4, 3


def episode_transitions(rng: np.random.Generator, frame_shape, dtype, length: int):
    """One episode as (obs, next_obs) pairs, the way an n-step actor emits them.

    obs_t = the last STACK frames, padded at the start by repeating the first frame;
    next_obs_t = obs_{t+n}, or the terminal observation (never an obs itself) near the end.
    """
    if np.dtype(dtype).kind == "f":
        frames = rng.standard_normal((length + 1, *frame_shape)).astype(dtype)
    else:
        frames = rng.integers(0, 256, (length + 1, *frame_shape)).astype(dtype)
    padded = np.concatenate([np.repeat(frames[:1], STACK - 1, axis=0), frames])
    stacks = np.stack([padded[t : t + STACK] for t in range(length + 1)])  # obs_0..obs_T
    obs = stacks[:length]
    nxt = stacks[np.minimum(np.arange(length) + NSTEP, length)]
    return obs, nxt


def interleaved_stream(rng, n_envs: int, n_items: int, frame_shape, dtype):
    """Transitions of n_envs envs, interleaved round-robin, episodes of random length."""
    queues = [[] for _ in range(n_envs)]
    out_obs, out_next = [], []
    while len(out_obs) < n_items:
        for e in range(n_envs):
            if not queues[e]:
                o, x = episode_transitions(rng, frame_shape, dtype, int(rng.integers(1, 30)))
                queues[e] = list(zip(o, x, strict=True))
            o, x = queues[e].pop(0)
            out_obs.append(o)
            out_next.append(x)
    return np.stack(out_obs[:n_items]), np.stack(out_next[:n_items])


def make(cls, capacity: int, frame_shape, dtype, reserved: int = 0):
    spec = FrameStackSpec(stack=STACK, frame_shape=frame_shape, dtype=dtype)
    fields = {"obs": spec, "action": FieldSpec((), np.int64), "next_obs": spec}
    if cls is PrioritizedReplay:
        return cls(capacity, fields, reserved=reserved, seed=0)
    return cls(capacity, fields, reserved=reserved, seed=0)


@pytest.mark.parametrize(
    ("frame_shape", "dtype"),
    [((8, 8), np.uint8), ((5, 7), np.uint8), ((3, 4), np.float32), ((84, 84), np.uint8)],
)
def test_byte_exact_with_eviction_interleaving_and_nstep(frame_shape, dtype) -> None:
    rng = np.random.default_rng(0)
    capacity = 300
    rb = make(PrioritizedReplay, capacity, frame_shape, dtype)
    total = 1000 if frame_shape != (84, 84) else 400
    obs, nxt = interleaved_stream(rng, 5, total, frame_shape, dtype)
    ref: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    pos = 0
    while pos < total:
        n = int(rng.integers(1, 40))
        sl = slice(pos, min(pos + n, total))
        b = {"obs": obs[sl], "action": np.arange(sl.start, sl.stop), "next_obs": nxt[sl]}
        idx = rb.add(b, rng.random(sl.stop - sl.start))
        for k, i in enumerate(idx):
            ref[int(i)] = (obs[sl][k], nxt[sl][k])
        pos = sl.stop
        # Every stored transition reconstructs exactly, after every push (eviction included).
        got = rb.get(np.arange(len(rb)))
        for i in range(len(rb)):
            assert got["obs"][i].tobytes() == ref[i][0].tobytes()
            assert got["next_obs"][i].tobytes() == ref[i][1].tobytes()
        assert got["obs"].dtype == np.dtype(dtype)
        assert got["obs"].shape == (len(rb), STACK, *frame_shape)
    # Dedup: about one frame per transition, plus stream heads and tails.
    store = rb._stores["frames"]
    assert store.live_frames <= 1.35 * len(rb) + 5 * (STACK + NSTEP)
    # A sampled batch carries the same bytes.
    s = rb.sample(64, 0.4)
    for i, o in zip(s.indices, s.fields["obs"], strict=True):
        assert o.tobytes() == ref[int(i)][0].tobytes()


def test_refcounts_match_references() -> None:
    rng = np.random.default_rng(1)
    rb = make(UniformReplay, 100, (6, 6), np.uint8)
    obs, nxt = interleaved_stream(rng, 3, 700, (6, 6), np.uint8)
    for s in range(0, 700, 50):
        rb.add(
            {"obs": obs[s : s + 50], "action": np.zeros(50, np.int64), "next_obs": nxt[s : s + 50]}
        )
    store = rb._stores["frames"]
    refs = np.concatenate([rb._refs["obs"].ravel(), rb._refs["next_obs"].ravel()])
    expected = np.bincount(refs, minlength=store.num_frames)
    np.testing.assert_array_equal(store.refc, expected)  # no leaks, nothing freed too early
    assert store.live_frames == np.count_nonzero(expected)


def test_no_overlap_still_exact_and_store_grows() -> None:
    rng = np.random.default_rng(2)
    rb = make(UniformReplay, 1500, (4, 4), np.uint8)
    start = rb._stores["frames"].num_frames
    seen = {}
    for _ in range(6):
        obs = rng.integers(0, 256, (400, STACK, 4, 4), dtype=np.uint8)
        nxt = rng.integers(0, 256, (400, STACK, 4, 4), dtype=np.uint8)
        idx = rb.add({"obs": obs, "action": np.zeros(400, np.int64), "next_obs": nxt})
        for j, i in enumerate(idx):
            seen[int(i)] = (obs[j].tobytes(), nxt[j].tobytes())
    assert rb._stores["frames"].num_frames > start
    assert rb._stores["frames"].live_frames == 1500 * 2 * STACK  # nothing to share
    got = rb.get(np.arange(1500))
    for i in range(1500):
        assert (got["obs"][i].tobytes(), got["next_obs"][i].tobytes()) == seen[i]


def test_reserved_frames_survive_eviction() -> None:
    rng = np.random.default_rng(3)
    rb = make(PrioritizedReplay, 50, (8, 8), np.uint8, reserved=10)
    demo_o, demo_n = interleaved_stream(rng, 1, 10, (8, 8), np.uint8)
    rb.add_reserved({"obs": demo_o, "action": np.zeros(10, np.int64), "next_obs": demo_n})
    obs, nxt = interleaved_stream(rng, 4, 400, (8, 8), np.uint8)
    for s in range(0, 400, 25):
        rb.add(
            {"obs": obs[s : s + 25], "action": np.ones(25, np.int64), "next_obs": nxt[s : s + 25]}
        )
    got = rb.get(np.arange(10))
    np.testing.assert_array_equal(got["obs"], demo_o)
    np.testing.assert_array_equal(got["next_obs"], demo_n)


def test_frame_field_bad_input_writes_nothing() -> None:
    rb = make(PrioritizedReplay, 20, (8, 8), np.uint8)
    good = {
        "obs": np.zeros((2, STACK, 8, 8), np.uint8),
        "action": np.zeros(2, np.int64),
        "next_obs": np.zeros((2, STACK, 8, 8), np.uint8),
    }
    rb.add(good)
    live = rb._stores["frames"].live_frames
    bad = dict(good, obs=np.zeros((2, STACK, 8, 8), np.int64))
    with pytest.raises(ReplayError, match="field 'obs': dtype int64"):
        rb.add(bad)
    bad = dict(good, next_obs=np.zeros((2, 3, 8, 8), np.uint8))
    with pytest.raises(ReplayError, match="expected \\(n, 4, 8, 8\\)"):
        rb.add(bad)
    assert len(rb) == 2 and rb._stores["frames"].live_frames == live


def test_mismatched_frame_stores_rejected() -> None:
    with pytest.raises(ReplayError, match="frame store 'frames'"):
        PrioritizedReplay(
            10,
            {
                "obs": FrameStackSpec(4, (8, 8), np.uint8),
                "next_obs": FrameStackSpec(4, (8, 9), np.uint8),
            },
        )


def test_sampled_stacks_stay_valid_while_referenced_and_blocks_are_reused() -> None:
    rng = np.random.default_rng(4)
    rb = make(PrioritizedReplay, 200, (8, 8), np.uint8)
    obs, nxt = interleaved_stream(rng, 2, 200, (8, 8), np.uint8)
    rb.add({"obs": obs, "action": np.arange(200), "next_obs": nxt})
    first = rb.sample(64, 0.4)
    view = first.fields["obs"][::2]  # a view keeps the pooled block alive too
    copy = view.copy()
    del first
    for _ in range(5):
        rb.sample(64, 0.4)  # would overwrite the block if it had been recycled too early
    np.testing.assert_array_equal(view, copy)
    a = rb.sample(64, 0.4).fields["obs"]
    addr = a.__array_interface__["data"][0]
    del a
    b = rb.sample(64, 0.4).fields["obs"]
    assert b.__array_interface__["data"][0] == addr  # recycled once no reference was left
