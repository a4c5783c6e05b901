"""Soak: an Ape-X fleet over Redis runs for a while with a hostile peer writing garbage and
well-formed hostile messages into its experience list and a Redis restart in the middle; the
run ends on its budget, every bad message is counted, and the learner's memory stays flat.

Deselected by default (``-m "not soak"`` in pyproject's addopts). The short soak (90 s)::

    python -m pytest -m soak tests/e2e/test_soak.py

The long soak (one hour; memory sampled every minute)::

    RLFLEET_SOAK_S=3600 python -m pytest -m soak tests/e2e/test_soak.py --timeout 4000
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tiny_budget import TINY

from rlfleet.agents.common.checkpoint import check_resumable, latest_checkpoint
from rlfleet.cli.presets import build_config
from rlfleet.fleet.launcher import LocalFleet
from rlfleet.fleet.metrics import read_metrics
from rlfleet.transport.codec import encode
from rlfleet.transport.redis import connect
from rlfleet.transport.redis.keys import experience_key

pytestmark = [
    pytest.mark.soak,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for memory"),
]

SOAK_S = float(os.environ.get("RLFLEET_SOAK_S", "90"))
#: Allowed growth of the learner's resident memory from the first third of the run to its end.
RSS_GROWTH = 1.25


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _hostile(rng: np.random.Generator) -> bytes:
    n = 16
    good = {
        "obs": rng.normal(size=(n, 4)).astype(np.float32),
        "next_obs": rng.normal(size=(n, 4)).astype(np.float32),
        "action": rng.integers(0, 2, n).astype(np.int64),
        "reward": np.ones(n, np.float32),
        "discount": np.full(n, 0.97, np.float32),
        "priority": np.ones(n, np.float32),
    }
    kind = int(rng.integers(5))
    if kind == 0:
        return rng.bytes(int(rng.integers(1, 4096)))  # garbage
    if kind == 1:
        return encode("experience", {**good, "priority": np.full(n, np.nan, np.float32)}, {})
    if kind == 2:
        return encode("experience", {**good, "action": np.full(n, 7, np.int64)}, {})
    if kind == 3:
        return encode("experience", good, {"env_steps": "many"})
    return encode("experience", {"x": np.zeros(3, np.uint8)}, {})


def test_soak_hostile_peer_and_a_redis_restart(tmp_path, redis_server):
    config = build_config(
        "cartpole",
        [
            *TINY,
            "run.total_env_steps=0",
            f"run.max_seconds={SOAK_S}",
            "run.checkpoint_interval_s=10",
            "replay.capacity=20000",  # fills early: memory must stay flat from then on
            "transport.kind=redis",
            "transport.run=soak",
        ],
    )
    fleet = LocalFleet(config, tmp_path / "run", show_progress=False, redis_url=redis_server.url)
    holder: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: holder.setdefault("r", fleet.run()), daemon=True)
    thread.start()
    while fleet.result.updates < 20 and thread.is_alive():
        time.sleep(0.2)
    learner = fleet.supervisor.get("learner").handle
    rng = np.random.default_rng(0)
    client = connect(redis_server.url)
    sent, samples, restarted = 0, [], False
    next_sample = time.monotonic()
    while thread.is_alive():
        try:
            client.rpush(experience_key("soak"), _hostile(rng))
            sent += 1
        except Exception:  # noqa: BLE001 - the server is restarting
            pass
        elapsed = fleet._wall()
        if not restarted and elapsed > SOAK_S / 2:
            redis_server.kill()
            time.sleep(1.0)
            redis_server.start()
            restarted = True
        if time.monotonic() >= next_sample and learner.is_alive():
            samples.append((elapsed, _rss_mb(learner.pid)))
            next_sample += min(60.0, SOAK_S / 20)
        time.sleep(0.1)
    thread.join()
    result = holder["r"]
    assert result.stop_reason == "time budget" and restarted
    assert sent > 100 and result.updates > 0 and result.final_returns
    rejected = read_metrics(tmp_path / "run")["transport/rejected"]
    assert max(value for *_, value in rejected) > 0, "the hostile messages were counted"
    check_resumable(latest_checkpoint(tmp_path / "run"), config)
    print(
        f"hostile messages {sent}, learner RSS (wall_s, MB): {[(round(t), round(mb)) for t, mb in samples]}"
    )
    settled = [mb for t, mb in samples if t >= SOAK_S / 3]
    assert settled, samples
    assert max(settled) <= RSS_GROWTH * settled[0], f"learner memory grew: {samples}"
