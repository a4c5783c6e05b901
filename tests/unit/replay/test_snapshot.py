"""Snapshots: atomic, code-free, and the restored buffer continues identically."""

from __future__ import annotations

import os

import numpy as np
import pytest

from rlfleet.errors import CheckpointError
from rlfleet.replay import FieldSpec, FrameStackSpec, PrioritizedReplay, UniformReplay

FRAME = FrameStackSpec(stack=4, frame_shape=(6, 6), dtype=np.uint8)
FIELDS = {
    "obs": FRAME,
    "action": FieldSpec((), np.int64),
    "reward": FieldSpec((), np.float32),
    "next_obs": FRAME,
}


def batch(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    frames = rng.integers(0, 256, (n + 7, 6, 6), dtype=np.uint8)
    obs = np.stack([frames[i : i + 4] for i in range(n)])
    nxt = np.stack([frames[i + 3 : i + 7] for i in range(n)])
    return {
        "obs": obs,
        "action": rng.integers(0, 5, n),
        "reward": rng.random(n, dtype=np.float32),
        "next_obs": nxt,
    }


def filled(cls, rng):
    kw = {"reserved": 8, "seed": 5}
    if cls is PrioritizedReplay:
        rb = cls(100, FIELDS, alpha=0.7, priority_eps=0.01, reserved_priority_eps=0.5, **kw)
    else:
        rb = cls(100, FIELDS, **kw)
    rb.add_reserved(batch(rng, 6), rng.random(6))
    for _ in range(7):
        rb.add(batch(rng, 30), rng.random(30))
    rb.sample(16, 0.4)  # advance the rng: its state must be saved too
    return rb


def assert_same_sample(a, b, beta: float = 0.6) -> None:
    sa, sb = a.sample(32, beta), b.sample(32, beta)
    np.testing.assert_array_equal(sa.indices, sb.indices)
    np.testing.assert_array_equal(sa.weights, sb.weights)
    np.testing.assert_array_equal(sa.generations, sb.generations)
    for k in sa.fields:
        np.testing.assert_array_equal(sa.fields[k], sb.fields[k])


@pytest.mark.parametrize("cls", [PrioritizedReplay, UniformReplay])
def test_round_trip_continues_identically(cls, tmp_path) -> None:
    rng = np.random.default_rng(0)
    rb = filled(cls, rng)
    path = tmp_path / "replay.npz"
    rb.save(path)
    rb2 = cls.load(path)
    assert len(rb2) == len(rb) and rb2.num_reserved == rb.num_reserved
    assert rb2.max_priority == rb.max_priority
    assert_same_sample(rb, rb2)
    # Writes continue at the same cursor, frames dedup against the restored store.
    more = batch(rng, 25)
    np.testing.assert_array_equal(rb.add(more, np.ones(25)), rb2.add(more, np.ones(25)))
    assert_same_sample(rb, rb2)
    s = rb.sample(8, 0.4)
    s2 = rb2.sample(8, 0.4)
    assert rb.update_priorities(s.indices, np.arange(8.0), s.generations) == (
        rb2.update_priorities(s2.indices, np.arange(8.0), s2.generations)
    )
    assert_same_sample(rb, rb2)
    assert rb._stores["frames"].live_frames == rb2._stores["frames"].live_frames
    assert [p.name for p in tmp_path.iterdir()] == ["replay.npz"]  # no temp files left


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch) -> None:
    rng = np.random.default_rng(1)
    rb = filled(PrioritizedReplay, rng)
    path = tmp_path / "replay.npz"
    rb.save(path)
    before = path.read_bytes()
    rb.add(batch(rng, 10))

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        rb.save(path)
    assert path.read_bytes() == before  # the old snapshot is intact
    assert os.listdir(tmp_path) == ["replay.npz"]  # and no temp file is left behind


def test_load_rejects_foreign_and_broken_files(tmp_path) -> None:
    rng = np.random.default_rng(2)
    p = tmp_path / "u.npz"
    filled(UniformReplay, rng).save(p)
    with pytest.raises(CheckpointError, match="holds a 'uniform' buffer"):
        PrioritizedReplay.load(p)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(CheckpointError):
        PrioritizedReplay.load(junk)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, __header__=np.array([{"format": "x"}], dtype=object))
    with pytest.raises(CheckpointError):  # object arrays need pickle: refused, never run
        PrioritizedReplay.load(pickled)
    with pytest.raises(CheckpointError, match="does not exist"):
        PrioritizedReplay.load(tmp_path / "missing.npz")
    with pytest.raises(CheckpointError, match="folder"):
        filled(UniformReplay, rng).save(tmp_path / "no" / "x.npz")
