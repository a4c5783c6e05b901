"""`rlfleet bench replay`: rlfleet's prioritized replay against cpprb and tianshou, side by side.

Workloads (see docs/replay.md):

- **V**: capacity 1,000,000; obs float32[8], action int64, reward float32, next_obs float32[8],
  done float32.
- **F**: capacity 100,000; obs and next_obs uint8[4, 84, 84] from 8 interleaved envs with n-step
  (n = 3) next observations, so consecutive observations of one env share 3 of 4 frames.

Ops, after the buffer is filled to capacity: add 64 with priorities; sample 512 (alpha 0.6,
beta 0.4, weights and all fields); update 512; then an interleaved loop of the learner step
(sample + update 512) and the actor push (add 64). Median microseconds per op, and RSS after
prefill. Every implementation/workload runs in a fresh child process pinned to one core with one
thread, so RSS and caches are its own: ``python -m benchmarks.replay --child IMPL WORKLOAD``
prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks import child_env
from benchmarks.machine import machine_info

IMPLS = ("rlfleet", "cpprb", "tianshou")
ADD, SAMPLE, UPDATE = 64, 512, 512
ALPHA, BETA = 0.6, 0.4
STACK, NSTEP, N_ENVS = 4, 3, 8


def _rss_mib() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB."""
    vals = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                key, v = line.split(":")
                vals[key] = int(v.split()[0]) / 1024
    return vals.get("VmRSS", float("nan")), vals.get("VmHWM", float("nan"))


def _median_us(times: list[float]) -> float:
    return float(np.median(times) * 1e6)


# -- workload data ---------------------------------------------------------------------------


class VData:
    """Random transitions for workload V."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def batch(self, n: int) -> dict[str, np.ndarray]:
        r = self.rng
        return {
            "obs": r.random((n, 8), dtype=np.float32),
            "action": r.integers(0, 18, n),
            "reward": r.random(n, dtype=np.float32),
            "next_obs": r.random((n, 8), dtype=np.float32),
            "done": (r.random(n) < 0.01).astype(np.float32),
        }


class FData:
    """Interleaved frame streams: N_ENVS envs, random episode lengths, reset padding, n-step."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.eps: list[tuple[np.ndarray, int]] = [self._episode() for _ in range(N_ENVS)]
        self.t = [0] * N_ENVS
        self.env = 0

    def _episode(self) -> tuple[np.ndarray, int]:
        length = int(self.rng.integers(50, 400))
        frames = self.rng.integers(0, 256, (length + 1, 84, 84), dtype=np.uint8)
        padded = np.concatenate([np.repeat(frames[:1], STACK - 1, axis=0), frames])
        return padded, length

    def batch(self, n: int) -> dict[str, np.ndarray]:
        obs = np.empty((n, STACK, 84, 84), dtype=np.uint8)
        nxt = np.empty_like(obs)
        k = 0
        per_env = max(1, n // N_ENVS)
        while k < n:
            e = self.env
            self.env = (self.env + 1) % N_ENVS
            padded, length = self.eps[e]
            t0 = self.t[e]
            m = min(per_env, n - k, length - t0)
            ts = t0 + np.arange(m)
            win = np.arange(STACK)
            obs[k : k + m] = padded[ts[:, None] + win]
            nxt[k : k + m] = padded[np.minimum(ts + NSTEP, length)[:, None] + win]
            k += m
            self.t[e] = t0 + m
            if self.t[e] >= length:
                self.eps[e] = self._episode()
                self.t[e] = 0
        r = self.rng
        return {
            "obs": obs,
            "action": r.integers(0, 18, n),
            "reward": r.random(n, dtype=np.float32),
            "next_obs": nxt,
            "done": (r.random(n) < 0.01).astype(np.float32),
        }


# -- adapters: the same four operations on each implementation --------------------------------


class Adapter:
    """add(batch, prio); sample() -> opaque handle; update(handle, prio)."""

    def add(self, b: dict[str, np.ndarray], prio: np.ndarray) -> None:
        raise NotImplementedError

    def sample(self) -> Any:
        raise NotImplementedError

    def update(self, handle: Any, prio: np.ndarray) -> None:
        raise NotImplementedError


class RlfleetAdapter(Adapter):
    def __init__(self, capacity: int, frames: bool) -> None:
        from rlfleet.replay import FieldSpec, FrameStackSpec, PrioritizedReplay

        obs = FrameStackSpec(STACK, (84, 84), np.uint8) if frames else FieldSpec((8,), np.float32)
        fields = {
            "obs": obs,
            "action": FieldSpec((), np.int64),
            "reward": FieldSpec((), np.float32),
            "next_obs": obs,
            "done": FieldSpec((), np.float32),
        }
        self.rb = PrioritizedReplay(capacity, fields, alpha=ALPHA, priority_eps=1e-6, seed=0)

    def add(self, b: dict[str, np.ndarray], prio: np.ndarray) -> None:
        self.rb.add(b, prio)

    def sample(self) -> Any:
        return self.rb.sample(SAMPLE, BETA)

    def update(self, handle: Any, prio: np.ndarray) -> None:
        self.rb.update_priorities(handle.indices, prio, handle.generations)


class CpprbAdapter(Adapter):
    def __init__(self, capacity: int, frames: bool) -> None:
        import cpprb

        shape = (STACK, 84, 84) if frames else 8
        dt = np.uint8 if frames else np.float32
        env = {
            "obs": {"shape": shape, "dtype": dt},
            "act": {"dtype": np.int64},
            "rew": {"dtype": np.float32},
            "next_obs": {"shape": shape, "dtype": dt},
            "done": {"dtype": np.float32},
        }
        self.rb = cpprb.PrioritizedReplayBuffer(capacity, env, alpha=ALPHA)

    def add(self, b: dict[str, np.ndarray], prio: np.ndarray) -> None:
        self.rb.add(
            obs=b["obs"],
            act=b["action"],
            rew=b["reward"],
            next_obs=b["next_obs"],
            done=b["done"],
            priorities=prio,
        )

    def sample(self) -> Any:
        return self.rb.sample(SAMPLE, beta=BETA)

    def update(self, handle: Any, prio: np.ndarray) -> None:
        self.rb.update_priorities(handle["indexes"], prio)


class TianshouAdapter(Adapter):
    """tianshou adds a batch from parallel envs through its vector buffer (one sub-buffer per
    env) and has no add-with-priority, so add = add + update_weight. Its sampling is not
    stratified and its weights are normalised by the batch maximum (its default)."""

    def __init__(self, capacity: int, frames: bool) -> None:
        from tianshou.data import Batch, PrioritizedVectorReplayBuffer

        self.Batch = Batch
        self.rb = PrioritizedVectorReplayBuffer(
            total_size=capacity, buffer_num=ADD, alpha=ALPHA, beta=BETA
        )
        self.ids = np.arange(ADD)

    def add(self, b: dict[str, np.ndarray], prio: np.ndarray) -> None:
        n = len(prio)
        done = b["done"].astype(bool)
        batch = self.Batch(
            obs=b["obs"],
            act=b["action"],
            rew=b["reward"],
            terminated=done,
            truncated=np.zeros(n, dtype=bool),
            obs_next=b["next_obs"],
            info=self.Batch(),
        )
        ptr, *_ = self.rb.add(batch, buffer_ids=self.ids[:n])
        self.rb.update_weight(ptr, prio)

    def sample(self) -> Any:
        return self.rb.sample(SAMPLE)

    def update(self, handle: Any, prio: np.ndarray) -> None:
        self.rb.update_weight(handle[1], prio)


ADAPTERS: dict[str, Callable[[int, bool], Adapter]] = {
    "rlfleet": RlfleetAdapter,
    "cpprb": CpprbAdapter,
    "tianshou": TianshouAdapter,
}


def _available(impl: str) -> bool:
    if impl == "rlfleet":
        return True
    import importlib.util

    return importlib.util.find_spec(impl) is not None


# -- the child: one implementation on one workload -------------------------------------------


def run_child(impl: str, workload: str, quick: bool, repeats: int) -> dict[str, Any]:
    """Prefill, then time each op ``repeats`` times; returns the figures."""
    frames = workload == "F"
    if quick:
        capacity = 4_000 if frames else 100_000
    else:
        capacity = 100_000 if frames else 1_000_000
    rng = np.random.default_rng(0)
    data: VData | FData = FData(rng) if frames else VData(rng)
    t0 = time.perf_counter()
    ad = ADAPTERS[impl](capacity, frames)
    chunk = ADD if (frames or impl == "tianshou") else 10_000
    filled = 0
    while filled < capacity:
        n = min(chunk, capacity - filled)
        ad.add(data.batch(n), rng.random(n) + 0.01)
        filled += n
    prefill_s = time.perf_counter() - t0
    rss, peak = _rss_mib()
    # Inputs are made up front so data generation is not timed.
    adds = [data.batch(ADD) for _ in range(min(repeats, 64))]
    add_prio = rng.random(ADD) + 0.01
    upd_prio = rng.random(UPDATE) + 0.01
    for _ in range(3):  # warm-up (JIT dispatch caches, allocator)
        h = ad.sample()
        ad.update(h, upd_prio)
        ad.add(adds[0], add_prio)
    res: dict[str, list[float]] = {k: [] for k in ("add", "sample", "update", "step", "push")}
    pc = time.perf_counter
    for i in range(repeats):
        b = adds[i % len(adds)]
        t = pc()
        ad.add(b, add_prio)
        res["add"].append(pc() - t)
    for _ in range(repeats):
        t = pc()
        h = ad.sample()
        res["sample"].append(pc() - t)
        t = pc()
        ad.update(h, upd_prio)
        res["update"].append(pc() - t)
    for i in range(repeats):  # interleaved: what a learner and an actor do to one buffer
        t = pc()
        h = ad.sample()
        ad.update(h, upd_prio)
        t1 = pc()
        ad.add(adds[i % len(adds)], add_prio)
        t2 = pc()
        res["step"].append(t1 - t)
        res["push"].append(t2 - t1)
    out: dict[str, Any] = {
        "impl": impl,
        "workload": workload,
        "capacity": capacity,
        "repeats": repeats,
        "prefill_s": round(prefill_s, 3),
        "rss_mib_after_prefill": round(rss, 1),
        "peak_rss_mib": round(_rss_mib()[1], 1),
    }
    for k, v in res.items():
        out[f"{k}_us"] = round(_median_us(v), 2)
    return out


def _pin_one_core() -> int:
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def _child_env() -> dict[str, str]:
    threads = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    return child_env(**dict.fromkeys(threads, "1"))


def _spawn(impl: str, workload: str, quick: bool, repeats: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.replay", "--child", impl, workload]
    cmd += ["--repeats", str(repeats)] + (["--quick"] if quick else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_child_env())
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-3:]
        return {"impl": impl, "workload": workload, "error": " | ".join(tail)}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _table(results: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="replay benchmark (median µs per op, one core)")
    cols = ["workload", "impl", "add 64", "sample 512", "update 512", "step", "push", "RSS MiB"]
    for c in cols:
        table.add_column(c, justify="right" if c not in ("workload", "impl") else "left")
    base = {r["workload"]: r for r in results if r["impl"] == "rlfleet" and "error" not in r}
    for r in results:
        if "error" in r:
            table.add_row(r["workload"], r["impl"], f"[red]error: {r['error']}[/red]")
            continue
        cells = []
        for key in ("add_us", "sample_us", "update_us", "step_us", "push_us"):
            v = r[key]
            ref = base.get(r["workload"], {}).get(key)
            ratio = f" ({v / ref:.1f}x)" if r["impl"] != "rlfleet" and ref else ""
            cells.append(f"{v:.1f}{ratio}")
        table.add_row(r["workload"], r["impl"], *cells, f"{r['rss_mib_after_prefill']:.0f}")
    Console().print(table)
    Console().print("peer (Nx) = peer time / rlfleet time: above 1 means rlfleet is faster.")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rlfleet bench replay``; returns the exit code."""
    p = argparse.ArgumentParser(prog="rlfleet bench replay", description=__doc__.splitlines()[0])
    p.add_argument("--json", metavar="PATH", help="write all figures and machine info here")
    p.add_argument("--workload", choices=("V", "F", "all"), default="all")
    p.add_argument("--repeats", type=int, default=None, help="timed calls per op (default 300)")
    p.add_argument("--no-peers", action="store_true", help="only rlfleet (peers also need RAM)")
    p.add_argument("--quick", action="store_true", help="small capacities, rlfleet only")
    p.add_argument("--child", nargs=2, metavar=("IMPL", "WORKLOAD"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    repeats = args.repeats or (30 if args.quick else 300)
    if args.child:
        impl, workload = args.child
        if impl not in IMPLS or workload not in ("V", "F"):
            p.error(f"--child wants IMPL in {IMPLS} and WORKLOAD in ('V', 'F')")
        cpu = _pin_one_core()
        out = run_child(impl, workload, args.quick, repeats)
        out["cpu"] = cpu
        print(json.dumps(out))
        return 0
    workloads = ["V", "F"] if args.workload == "all" else [args.workload]
    impls = ["rlfleet"]
    skipped = []
    if not (args.no_peers or args.quick):
        for impl in IMPLS[1:]:
            (impls if _available(impl) else skipped).append(impl)
    results = [_spawn(i, w, args.quick, repeats) for w in workloads for i in impls]
    _table(results)
    if skipped:
        print(f"peers not installed (pip install 'rlfleet[bench]'): {', '.join(skipped)}")
    if args.json:
        doc = {
            "benchmark": "replay",
            "quick": args.quick,
            "machine": machine_info(("numpy", "numba", "cpprb", "tianshou")),
            "params": {
                "add": ADD,
                "sample": SAMPLE,
                "update": UPDATE,
                "alpha": ALPHA,
                "beta": BETA,
            },
            "results": results,
            "skipped_peers": skipped,
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
