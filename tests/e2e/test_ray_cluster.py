"""``rlfleet train --ray`` on a two-node Ray cluster of this machine: a tiny CartPole run placed
across both nodes (the learner and evaluator packed on one, the actors spread), one actor's Ray
actor killed mid-run (Ray restarts it and the run goes on), Ctrl-C (SIGINT to the driver) ends
the run in order, and nothing of the run is left on the cluster afterwards (no live actor, no placement group, every CPU free, no
redis-server rlfleet started)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from ray_cluster import TwoNodeCluster, group_members, redis_servers_of_rlfleet
from tiny_budget import TINY

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None,
        reason="the ray extra is not installed (pip install 'rlfleet[ray]')",
    ),
    pytest.mark.skipif(
        shutil.which("redis-server") is None,
        reason="redis-server binary not found: --ray starts one on the learner's node",
    ),
]

#: Run in a driver of its own (Ray reads its token when imported): kill actor-0 of the run.
KILL = """
import ray
ray.init(address={address!r}, namespace="rlfleet-raye2e", log_to_driver=False)
ray.kill(ray.get_actor("actor-0"), no_restart=False)  # the worker dies; Ray restarts the actor
print("killed")
"""

#: What the cluster still holds, as JSON.
LEFT = """
import json, ray
from ray.util.placement_group import placement_group_table
ray.init(address={address!r}, log_to_driver=False)
alive = ray.util.list_named_actors(all_namespaces=True)  # live named actors only
print(json.dumps({{
    "actors": [a["name"] for a in alive if a["namespace"] == "rlfleet-raye2e"],
    "groups": [g["state"] for g in placement_group_table().values()],
    "free_cpus": ray.available_resources().get("CPU", 0),
    "cpus": ray.cluster_resources().get("CPU", 0),
    "nodes": sum(1 for n in ray.nodes() if n["Alive"]),
}}))
"""


def _metric(run_dir, name: str) -> float:
    """The latest value of a metric in metrics.csv (wall_s,env_steps,updates,name,value)."""
    path = run_dir / "metrics.csv"
    rows = path.read_text().splitlines()[1:] if path.exists() else []
    values = [float(r.split(",")[4]) for r in rows if r.count(",") >= 4 and r.split(",")[3] == name]
    return values[-1] if values else 0.0


def _steps(run_dir) -> int:
    path = run_dir / "metrics.csv"
    rows = path.read_text().splitlines()[1:] if path.exists() else []
    return max((int(r.split(",")[1]) for r in rows if r.count(",") >= 4), default=0)


def _driver(code: str, env: dict) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_a_run_across_two_ray_nodes_survives_a_killed_actor_and_leaves_nothing(tmp_path):
    cluster = TwoNodeCluster()
    env = dict(cluster.env, PYTHONPATH=os.pathsep.join(sys.path))
    run_dir = tmp_path / "run"
    overrides = [*TINY, "run.total_env_steps=0", "eval.interval_s=2.0"]
    argv = [sys.executable, "-m", "rlfleet.cli.main", "train", "cartpole", "--quiet"]
    argv += ["--ray", cluster.address, "--run", "raye2e", "--run-dir", str(run_dir)]
    argv += [a for o in overrides for a in ("--set", o)]
    train = None
    try:
        cluster.start()
        train = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 240
        while _steps(run_dir) < 1000:  # training: the actors push experience
            assert train.poll() is None, train.stdout.read().decode()
            assert time.monotonic() < deadline, "no env steps after 240 s"
            time.sleep(0.5)
        assert _driver(KILL.format(address=cluster.address), env) == "killed"
        killed_at = _steps(run_dir)
        deadline = time.monotonic() + 180
        while _metric(run_dir, "fleet/actor_restarts") < 1 or _steps(run_dir) < killed_at + 2000:
            assert train.poll() is None, train.stdout.read().decode()
            assert time.monotonic() < deadline, "the killed actor did not come back in 180 s"
            time.sleep(0.5)
        train.send_signal(signal.SIGINT)  # Ctrl-C
        out, _ = train.communicate(timeout=300)
        text = out.decode()
        assert train.returncode == 0, text
        assert "redis://" not in text, "the generated URL must not be printed"

        final = json.loads((run_dir / "final_eval.json").read_text())
        assert final["placement"] == "ray" and final["transport"] == "redis"
        assert final["stop_reason"] == "interrupted", final["stop_reason"]
        assert final["actor_restarts"] >= 1
        assert final["updates"] > 0 and final["final_returns"] and final["checkpoint"]
        assert final["first_env_step_s"] is not None
        assert "redis://" not in (run_dir / "config.toml").read_text()

        left = json.loads(_driver(LEFT.format(address=cluster.address), env))
        assert left["nodes"] == 2
        assert left["actors"] == [], "a role of the run is still alive"
        assert all(state == "REMOVED" for state in left["groups"]), left["groups"]
        assert left["free_cpus"] == left["cpus"], "a role still holds a CPU"
        assert redis_servers_of_rlfleet() == [], "the run's redis-server is still running"
    finally:
        if train is not None and train.poll() is None:
            train.kill()
            train.wait(timeout=30)
        pgids = cluster.pgids()
        cluster.stop()
    assert all(group_members(g) == [] for g in pgids), "a Ray process outlived the cluster"
