"""``rlfleet bench replay-service``: the learner sampling its own replay vs a replay service.

Two measurements over a throw-away loopback ``redis-server``:

* **fleet**: a CartPole Ape-X run (the ``cartpole`` preset, tiny network) with the learner loop
  of :class:`rlfleet.agents.common.learner.LearnerShell` in this process, wired exactly as the
  learner role is (:func:`rlfleet.fleet.wiring.learner_ends`), fed by ``rlfleet actor`` processes and,
  with the service, an ``rlfleet replay`` process. After a warm-up it counts, over a fixed
  window, learner updates and the **training-data bytes that crossed the learner's Redis
  connection**: experience messages pulled (learner-side sampling), or sampled batches pulled
  plus priority messages sent (replay service). Parameter publishes are the same in both modes
  and are listed separately. Per update, learner-side sampling pulls ``batch / samples_per_insert``
  fresh transitions while the service sends ``batch`` sampled ones: the service moves fewer
  bytes only when ``replay.samples_per_insert < 1`` (actors producing more than the learner
  samples, as in the Ape-X paper), so the run is repeated at two samples-per-insert ratios.
* **pull**: :func:`benchmarks.service_pull.bench_replay_service` -- batches/s a learner
  pulls from a service (with priority updates going back), and bytes per batch, for vector
  (CartPole) and 4x84x84 frame observations.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.machine import machine_info
from rlfleet.errors import RlfleetError

#: Overrides of the cartpole preset for the fleet runs: a small, fast learner and two actors.
FLEET_OVERRIDES = [
    "model.hidden=[64, 64]",
    "learner.batch_size=64",
    "learner.publish_interval=5",
    "replay.learning_starts=1000",
    "run.total_env_steps=0",
    "run.max_seconds=0",
    "run.checkpoint_interval_s=0",
    "run.log_interval_s=0.5",
    "run.stop_on_solve=false",
]


class _WindowLink:
    """The learner's status link: records its reports and says "stop" once the measuring
    window (after ``warmup_s`` of learning) has lasted ``window_s``."""

    def __init__(self, data_bytes: Any, warmup_s: float, window_s: float, start_s: float) -> None:
        self.data_bytes = data_bytes
        self.warmup_s, self.window_s = warmup_s, window_s
        self.deadline = time.monotonic() + start_s
        self.first: float | None = None
        self.start: tuple[float, int, int] | None = None
        self.end: tuple[float, int, int] | None = None
        self.reports: list[dict[str, Any]] = []

    def send(self, kind: str, **meta: Any) -> None:
        if kind != "learner_stats":
            return
        now, updates = time.monotonic(), int(meta["updates"])
        if self.first is None and updates > 0:
            self.first = now
        if self.first is not None and self.start is None and now - self.first >= self.warmup_s:
            self.start = (now, updates, self.data_bytes())
        if self.start is not None and self.end is None:
            self.reports.append(meta)
            if now - self.start[0] >= self.window_s:
                self.end = (now, updates, self.data_bytes())

    def poll_command(self, timeout: float = 0.0) -> str | None:
        if self.end is not None or (self.first is None and time.monotonic() > self.deadline):
            return "stop"
        return None


def fleet_run(
    url: str,
    service: bool,
    samples_per_insert: float,
    *,
    actors: int = 2,
    warmup_s: float = 5.0,
    window_s: float = 20.0,
    seed: int = 0,
) -> dict[str, Any]:
    """One CartPole run over Redis at ``url``; learner updates/s and bytes per update."""
    import numpy as np
    import torch

    from rlfleet.agents import registry
    from rlfleet.agents.common.learner import LearnerShell
    from rlfleet.cli.presets import build_config
    from rlfleet.config import to_dict
    from rlfleet.envs.spec import probe_env
    from rlfleet.fleet.addresses import FleetAddresses
    from rlfleet.fleet.redis_run import open_redis_run
    from rlfleet.fleet.wiring import learner_ends
    from rlfleet.transport.codec import encode

    run = f"bench-rs-{'svc' if service else 'local'}-{samples_per_insert:g}".replace(".", "_")
    config = build_config(
        "cartpole",
        [
            *FLEET_OVERRIDES,
            f"replay.samples_per_insert={samples_per_insert}",
            "transport.kind=redis",
            f'transport.run="{run}"',
            f"transport.replay_service={'true' if service else 'false'}",
            f"run.seed={seed}",
        ],
    )
    torch.set_num_threads(config.learner.torch_threads)
    env = {**os.environ, "RLFLEET_REDIS_URL": url}  # the password stays off command lines
    cli = [sys.executable, "-m", "rlfleet.cli.main"]
    with tempfile.TemporaryDirectory(prefix="rlfleet-bench-rs-") as tmp:
        redis_run = open_redis_run(config, url, tmp, json.dumps(to_dict(config)))
        assert redis_run is not None
        procs = [
            subprocess.Popen(
                [*cli, "actor", "--run", run, "--actors", str(actors)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        ]
        if service:
            procs.append(
                subprocess.Popen(
                    [*cli, "replay", "--run", run, "--quiet"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        spec = registry.spec_of(config)
        env_spec = probe_env(config.env.id, config.env.kwargs, seed)
        ends = learner_ends(config, spec, FleetAddresses.remote(url, run), env_spec)
        if service:
            store = ends.store

            def data_bytes() -> int:
                return store.batch_source.bytes_received + store.priority_sink.bytes_pushed
        else:
            inbox = ends.inbox

            def data_bytes() -> int:
                return inbox.bytes_received

        link = _WindowLink(data_bytes, warmup_s, window_s, start_s=120.0)
        beat = threading.Event()

        def keep_claim() -> None:  # the launcher's job: keep the run name claimed
            while not beat.wait(1.0):
                redis_run.beat()

        beater = threading.Thread(target=keep_claim, daemon=True)
        beater.start()
        try:
            core = spec.make_learner(config, env_spec, seed, ends)
            LearnerShell(core, config, Path(tmp) / "run", ends.params, link, ends.inbox).serve()
        finally:
            beat.set()
            redis_run.finish("bench done", wait_for_actors_s=15.0)
            ends.close()
            for proc in procs:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    if link.start is None or link.end is None:
        raise RlfleetError(f"the {run} learner never completed its measuring window")
    (t0, u0, b0), (t1, u1, b1) = link.start, link.end
    updates = max(u1 - u0, 1)
    flat = np.zeros(_param_count(config), np.float32)
    params_message = len(encode("params", {"flat": flat}, {"version": 1}))
    return {
        "service": service,
        "samples_per_insert": samples_per_insert,
        "batch_size": config.learner.batch_size,
        "window_s": round(t1 - t0, 2),
        "updates": updates,
        "updates_per_s": updates / (t1 - t0),
        "data_bytes_per_update": (b1 - b0) / updates,
        "params_bytes_per_update": params_message / config.learner.publish_interval,
        "wait_fraction": float(
            np.mean([r["metrics"]["learner/wait_fraction"] for r in link.reports])
        ),
        "observed_samples_per_insert": float(
            link.reports[-1]["metrics"]["replay/samples_per_insert"]
        ),
    }


def _param_count(config: Any) -> int:
    from rlfleet.models import build_q_network, param_count

    net = build_q_network(
        (4,), 2, torso=config.model.torso, hidden=config.model.hidden, dueling=config.model.dueling
    )
    return param_count(net)


def pull_runs(url: str, batches: int) -> list[dict[str, Any]]:
    """Replay-service pull throughput for vector and frame observations."""
    from benchmarks.service_pull import bench_replay_service

    out = []
    for name, shape, dtype, batch, fill in (
        ("vector (4,) float32", (4,), "float32", 64, 20_000),
        ("frames 4x84x84 uint8", (4, 84, 84), "uint8", 32, 2_000),
    ):
        got = bench_replay_service(
            url, batches=batches, batch_size=batch, obs_shape=shape, obs_dtype=dtype, fill=fill
        )
        out.append({"obs": name, **got})
    return out


def main(argv: list[str] | None = None) -> int:
    from benchmarks.loopback_redis import LoopbackRedis

    p = argparse.ArgumentParser(prog="rlfleet bench replay-service", description=__doc__)
    p.add_argument("--json", default=None, metavar="PATH", help="write all results as JSON")
    p.add_argument("--window", type=float, default=20.0, help="measuring window, s (20)")
    p.add_argument("--warmup", type=float, default=5.0, help="learning before the window, s (5)")
    p.add_argument("--spi", type=float, nargs="+", default=[8.0, 0.5], help="ratios (8 0.5)")
    p.add_argument("--batches", type=int, default=300, help="batches per pull run (300)")
    args = p.parse_args(argv)
    server = LoopbackRedis()
    server.start()
    try:
        fleet = [
            fleet_run(server.url, service, spi, warmup_s=args.warmup, window_s=args.window)
            for spi in args.spi
            for service in (False, True)
        ]
        pull = pull_runs(server.url, args.batches)
    finally:
        server.stop()
    print("fleet: CartPole, 2 remote actors, learner in this process, loopback Redis")
    print(f"{'sampling':<10} {'SPI':>5} {'upd/s':>8} {'data B/upd':>11} {'params B/upd':>13} "
          f"{'wait':>5} {'obs SPI':>8}")  # fmt: skip
    for r in fleet:
        print(
            f"{'service' if r['service'] else 'learner':<10} {r['samples_per_insert']:>5g} "
            f"{r['updates_per_s']:>8.1f} {r['data_bytes_per_update']:>11.0f} "
            f"{r['params_bytes_per_update']:>13.0f} {r['wait_fraction']:>5.2f} "
            f"{r['observed_samples_per_insert']:>8.2f}"
        )
    print("pull: learner pulling sampled batches from a replay service (priorities sent back)")
    for r in pull:
        print(
            f"{r['obs']:<22} batch {r['batch_size']:>3.0f}: {r['batches_per_s']:>7.1f} batches/s, "
            f"{r['batch_bytes']:>9.0f} B/batch, {r['update_bytes']:>5.0f} B/priority message"
        )
    if args.json:
        doc = {"machine": machine_info(), "fleet": fleet, "pull": pull}
        Path(args.json).write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
