"""Chaos: a short Ape-X run over Redis with a replay service, during which a random role is
killed every few seconds -- an actor, the evaluator, the replay service (SIGKILL: no clean
release) or the redis-server itself (SIGKILL and restart, no persistence: every key is gone).
The run must finish on its own budget with a consistent checkpoint and consistent metrics.

Repeat it (the kills are random; the seed is printed on failure)::

    for i in $(seq 20); do python -m pytest -q tests/e2e/test_chaos.py || break; done
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

from tiny_budget import TINY

from rlfleet.agents.common.checkpoint import check_resumable, latest_checkpoint
from rlfleet.atomic import is_temp
from rlfleet.cli.presets import build_config
from rlfleet.fleet.launcher import LocalFleet

#: Seconds of the run; the last CALM_S of them have no kills, so the final evaluation runs.
RUN_S, CALM_S = 45.0, 8.0
#: Seconds between two kills, at random in this range.
KILL_EVERY_S = (1.5, 2.5)
ROLES = ("actor", "evaluator", "service", "redis")


def _kill(fleet: LocalFleet, victim: str, rng: random.Random, redis_server: Any) -> str:
    if victim == "redis":
        redis_server.kill()  # every key is gone: claim, config, params, queues
        time.sleep(rng.uniform(0.5, 1.5))
        redis_server.start()
        return "redis-server"
    index = rng.randrange(fleet.num_actors) if victim == "actor" else 0
    role = fleet.supervisor.get(victim, index)
    if role is None or not role.handle.is_alive():
        return f"{victim}[{index}] (already restarting)"
    os.kill(role.handle.pid, signal.SIGKILL)
    return f"{victim}[{index}]"


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_run_survives_random_kills_of_its_roles_and_of_redis(tmp_path, redis_server):
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    config = build_config(
        "cartpole",
        [
            *TINY,
            "run.total_env_steps=0",
            f"run.max_seconds={RUN_S}",
            "run.checkpoint_interval_s=3",
            "transport.kind=redis",
            "transport.run=chaos",
            "transport.replay_service=true",
            "transport.max_backlog=8",
            "transport.block_timeout_s=2",
        ],
    )
    run_dir = tmp_path / "run"
    fleet = LocalFleet(config, run_dir, show_progress=False, redis_url=redis_server.url)
    holder: dict[str, Any] = {}

    def run() -> None:
        try:
            holder["result"] = fleet.run()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            holder["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while fleet.result.updates < 20 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert fleet.result.updates >= 20, "the fleet never started learning"
    kills: list[str] = []
    # every kind of role once, in a random order, then any of them
    victims = rng.sample(ROLES, len(ROLES)) + [rng.choice(ROLES) for _ in range(100)]
    calm_at = fleet.t0 + RUN_S - CALM_S  # wall clock of the launcher: no kills after it
    while time.time() + KILL_EVERY_S[1] < calm_at and thread.is_alive():
        time.sleep(rng.uniform(*KILL_EVERY_S))
        kills.append(_kill(fleet, victims[len(kills)], rng, redis_server))
    updates_at_calm = fleet.result.updates
    thread.join(timeout=90)
    why = f"seed {seed}, kills {kills}"
    assert not thread.is_alive(), f"the run did not end ({why})"
    assert "error" not in holder, f"{holder.get('error')!r} ({why})"
    result = holder["result"]
    assert len(kills) >= len(ROLES), f"fewer kills than kinds of role ({why})"

    # the run ended on its own budget, learning to the end, with a final evaluation
    assert result.stop_reason == "time budget", why
    assert result.updates > updates_at_calm, f"no learning after the last kill ({why})"
    assert result.final_returns, f"no final evaluation ({why})"
    final = json.loads((run_dir / "final_eval.json").read_text())
    assert final["updates"] == result.updates and final["stop_reason"] == "time budget"

    # a consistent checkpoint: the final one, complete, resumable, matching the result
    ckpt = latest_checkpoint(run_dir)
    assert ckpt is not None and final["checkpoint"] == str(ckpt), why
    state = check_resumable(ckpt, config)
    assert state["counters"]["updates"] == result.updates, why
    leftovers = [p.name for p in (run_dir / "checkpoints").iterdir() if is_temp(p.name)]
    assert leftovers == [], f"half-written checkpoints left: {leftovers} ({why})"

    # consistent metrics: every row complete, time and counters never step back
    rows = _rows(run_dir)
    assert rows and all(len(row) == 5 and row["value"] != "" for row in rows), why
    for column in ("wall_s", "env_steps", "updates"):
        values = [float(row[column]) for row in rows]
        assert values == sorted(values), f"{column} steps back ({why})"
    assert float(rows[-1]["updates"]) <= result.updates
    names = {row["name"] for row in rows}
    assert {"learner/updates_per_s", "eval/return_mean", "fleet/actor_restarts"} <= names, why
