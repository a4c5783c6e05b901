"""`rlfleet bench cartpole`: wall-clock time to solve CartPole-v1, rlfleet Ape-X vs SB3 DQN/PPO.

Protocol (the same for every implementation, see docs/bench-cartpole.md):

- CartPole-v1; solved = greedy evaluation mean over 20 episodes >= 475 at two consecutive
  evaluations.
- Time to solve = wall clock from launching the run's process (interpreter start and imports
  included) to the moment the second qualifying evaluation finished. The parent records
  ``time.time()`` right before ``subprocess.Popen``; every run is its own process.
- A run that has not solved ``--max-seconds`` after its launch is unsolved and counts as the cap.
- rlfleet: ``rlfleet train cartpole`` (its evaluator is a separate process).
- SB3 DQN / PPO with the RL Zoo's CartPole-v1 hyperparameters, in a child
  (``python -m rlfleet.bench.cartpole --child IMPL --seed S ...``) that evaluates serially inside
  the training process: the headline for SB3 excludes its evaluation time, which favours SB3.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from rlfleet.bench.children import ChildRun, launch_child, output_tail, train_command
from rlfleet.bench.machine import machine_info
from rlfleet.bench.sb3_peers import linear_schedule, sb3_available
from rlfleet.bench.side_by_side import (
    add_child_arguments,
    add_train_overrides,
    requested_impls,
)

IMPLS = ("rlfleet", "sb3-dqn", "sb3-ppo")
SOLVE_THRESHOLD = 475.0
SOLVE_CONSECUTIVE = 2
EVAL_EPISODES = 20
ENV_ID = "CartPole-v1"
#: SB3 children evaluate every this many env steps (rlfleet's evaluator runs every eval.interval_s).
SB3_EVAL_EVERY = {"sb3-dqn": 1000, "sb3-ppo": 2048}
#: Threads torch may use inside an SB3 child (set with torch.set_num_threads).
SB3_TORCH_THREADS = 1
#: rlfleet settings the benchmark owns: passed explicitly on every run (so a preset change
#: cannot alter the protocol) and refused as --set overrides.
PROTOCOL_SETTINGS = {
    "env.id": ENV_ID,
    "env.max_episode_steps": "0",
    "run.stop_on_solve": "true",
    "eval.episodes": str(EVAL_EPISODES),
    "eval.epsilon": "0.0",
    "eval.max_episode_steps": "0",
    "eval.solve_threshold": str(SOLVE_THRESHOLD),
    "eval.solve_consecutive": str(SOLVE_CONSECUTIVE),
}
PROTOCOL_KEYS = (*PROTOCOL_SETTINGS, "run.seed", "run.max_seconds")
#: Extra seconds a run may take after the cap to shut down and write its results.
GRACE_S = 120.0
#: Seconds to wait for a killed run's output after each signal.
KILL_WAIT_S = 10.0

# Tuned CartPole-v1 hyperparameters of the RL Zoo (DLR-RM/rl-baselines3-zoo, hyperparams/dqn.yml
# and hyperparams/ppo.yml, current master). dqn.yml labels its CartPole entry "Almost Tuned"
# (older zoo versions had lr 2.5e-4, batch 512, train_freq 16, ...). "lin_X" in the zoo means
# X * progress_remaining, where progress runs over n_timesteps: the schedules (PPO's lr and clip
# range, DQN's exploration_fraction) are defined over the zoo's n_timesteps, so the children
# train with that budget and a run that reaches it unsolved stops ("zoo step budget").
ZOO_DQN: dict[str, Any] = {
    "n_timesteps": 50_000,
    "learning_rate": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 1000,
    "gamma": 0.99,
    "target_update_interval": 10,
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_fraction": 0.16,
    "exploration_final_eps": 0.04,
    "net_arch": [256, 256],
}
ZOO_PPO: dict[str, Any] = {
    "n_timesteps": 100_000,
    "n_envs": 8,
    "n_steps": 32,
    "batch_size": 256,
    "gae_lambda": 0.8,
    "gamma": 0.98,
    "n_epochs": 20,
    "ent_coef": 0.0,
    "learning_rate": "lin_0.001",
    "clip_range": "lin_0.2",
}


# -- pure helpers ------------------------------------------------------------------------------


class SolveTracker:
    """The solve criterion: mean >= threshold at ``consecutive`` evaluations in a row."""

    def __init__(
        self, threshold: float = SOLVE_THRESHOLD, consecutive: int = SOLVE_CONSECUTIVE
    ) -> None:
        self.threshold = threshold
        self.consecutive = consecutive
        self.streak = 0
        self.count = 0
        self.solved_at: int | None = None  # 1-based index of the evaluation that solved

    def update(self, return_mean: float) -> bool:
        """Record one evaluation; True from the evaluation that completes the streak onwards."""
        self.count += 1
        if self.solved_at is None:
            self.streak = self.streak + 1 if return_mean >= self.threshold else 0
            if self.streak >= self.consecutive:
                self.solved_at = self.count
        return self.solved_at is not None


@dataclass
class RunRecord:
    """One run of one implementation with one seed."""

    impl: str
    seed: int
    cap_s: float
    solved: bool = False
    #: launch -> second qualifying evaluation finished; the cap when unsolved.
    time_to_solve_s: float = 0.0
    env_steps_to_solve: int | None = None
    #: evaluations run up to and including the solving one (all of them if unsolved).
    evaluations: int = 0
    #: SB3 only: seconds spent in its own (in-process) evaluations before the solve.
    eval_s: float | None = None
    #: SB3 only: time_to_solve_s minus eval_s (the SB3 headline); the cap when unsolved.
    time_excl_eval_s: float | None = None
    stop_reason: str = ""
    process_wall_s: float = 0.0
    env_steps: int = 0
    error: str | None = None
    curve: list[dict[str, float]] = field(default_factory=list)
    command: list[str] = field(default_factory=list)

    @property
    def headline_s(self) -> float:
        """The figure medians are taken over: excluding evaluations for SB3."""
        return self.time_excl_eval_s if self.time_excl_eval_s is not None else self.time_to_solve_s


def finalize(rec: RunRecord, solved_at_unix: float | None, launch_unix: float) -> RunRecord:
    """Set the times from the solve moment; unsolved (or solved after the cap) counts as the cap."""
    elapsed = None if solved_at_unix is None else solved_at_unix - launch_unix
    if elapsed is not None and elapsed <= rec.cap_s:
        rec.solved = True
        rec.time_to_solve_s = round(elapsed, 3)
        if rec.eval_s is not None:
            rec.time_excl_eval_s = round(elapsed - rec.eval_s, 3)
    else:
        if elapsed is not None:
            rec.stop_reason = f"solved after the cap ({elapsed:.1f} s)"
        rec.solved = False
        rec.time_to_solve_s = rec.cap_s
        rec.env_steps_to_solve = None
        if rec.eval_s is not None:
            rec.time_excl_eval_s = rec.cap_s
    return rec


def _median(xs: list[float]) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    m = len(s) // 2
    return float(s[m]) if len(s) % 2 else (s[m - 1] + s[m]) / 2.0


def summarise(records: list[RunRecord]) -> dict[str, dict[str, Any]]:
    """Per implementation: solved count, median times (unsolved = cap), median steps (solved)."""
    out: dict[str, dict[str, Any]] = {}
    for impl in dict.fromkeys(r.impl for r in records):
        rs = [r for r in records if r.impl == impl]
        solved = [r for r in rs if r.solved]
        excl = [r.time_excl_eval_s for r in rs if r.time_excl_eval_s is not None]
        steps = [float(r.env_steps_to_solve) for r in solved if r.env_steps_to_solve is not None]
        out[impl] = {
            "runs": len(rs),
            "solved": len(solved),
            "median_time_to_solve_s": _median([r.time_to_solve_s for r in rs]),
            "median_time_excl_eval_s": _median(excl) if excl else None,
            "median_headline_s": _median([r.headline_s for r in rs]),
            "median_env_steps_to_solve": _median(steps),
            "median_evaluations": _median([float(r.evaluations) for r in solved]),
        }
    return out


def ratios(summary: dict[str, dict[str, Any]], cap_s: float) -> dict[str, dict[str, Any]]:
    """peer median / rlfleet median (above 1: rlfleet solves faster), headline and incl. eval.

    A median equal to the cap (half or more of the runs unsolved) makes the ratio a bound:
    ``bound`` is ">=" when only the peer's median is capped, "<=" when only rlfleet's is, and
    "n/a" when both are (the ratio then says nothing).
    """
    base = summary.get("rlfleet")
    out: dict[str, dict[str, Any]] = {}
    if not base or not base["median_time_to_solve_s"]:
        return out
    ref = base["median_time_to_solve_s"]
    for impl, s in summary.items():
        if impl == "rlfleet":
            continue
        div = lambda a: round(a / ref, 3) if a else None  # noqa: E731
        peer_capped = s["median_headline_s"] is not None and s["median_headline_s"] >= cap_s
        base_capped = ref >= cap_s
        bound = {(False, False): "", (True, False): ">=", (False, True): "<="}
        out[impl] = {
            "headline": div(s["median_headline_s"]),
            "incl_eval": div(s["median_time_to_solve_s"]),
            "bound": bound.get((peer_capped, base_capped), "n/a"),
        }
    return out


# -- the SB3 child -----------------------------------------------------------------------------


def _sb3_model(impl: str, seed: int) -> tuple[Any, int]:
    """The zoo-configured SB3 model and its training budget in env steps."""
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.env_util import make_vec_env

    if impl == "sb3-dqn":
        h = ZOO_DQN
        model = DQN(
            "MlpPolicy",
            make_vec_env(ENV_ID, n_envs=1, seed=seed),
            learning_rate=h["learning_rate"],
            batch_size=h["batch_size"],
            buffer_size=h["buffer_size"],
            learning_starts=h["learning_starts"],
            gamma=h["gamma"],
            target_update_interval=h["target_update_interval"],
            train_freq=h["train_freq"],
            gradient_steps=h["gradient_steps"],
            exploration_fraction=h["exploration_fraction"],
            exploration_final_eps=h["exploration_final_eps"],
            policy_kwargs={"net_arch": list(h["net_arch"])},
            seed=seed,
            device="cpu",
            verbose=0,
        )
        return model, h["n_timesteps"]
    h = ZOO_PPO
    model = PPO(
        "MlpPolicy",
        make_vec_env(ENV_ID, n_envs=h["n_envs"], seed=seed),
        n_steps=h["n_steps"],
        batch_size=h["batch_size"],
        gae_lambda=h["gae_lambda"],
        gamma=h["gamma"],
        n_epochs=h["n_epochs"],
        ent_coef=h["ent_coef"],
        learning_rate=linear_schedule(0.001),
        clip_range=linear_schedule(0.2),
        seed=seed,
        device="cpu",
        verbose=0,
    )
    return model, h["n_timesteps"]


def greedy_eval(model: Any, venv: Any, seed: int) -> float:
    """Mean return of one greedy episode per env of ``venv`` (batched deterministic predict)."""
    import numpy as np

    obs, _ = venv.reset(seed=seed)
    n = venv.num_envs
    returns = np.zeros(n)
    done = np.zeros(n, dtype=bool)
    while not done.all():
        actions, _ = model.predict(obs, deterministic=True)
        obs, reward, term, trunc, _ = venv.step(actions)
        returns += np.where(done, 0.0, reward)
        done |= term | trunc
    return float(returns.mean())


def run_child(impl: str, seed: int, cap_s: float, launch_unix: float) -> dict[str, Any]:
    """Train one SB3 run until solved, the cap (from launch) or the zoo budget; report as a dict."""
    import gymnasium as gym
    import stable_baselines3
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    torch.set_num_threads(SB3_TORCH_THREADS)
    every = SB3_EVAL_EVERY[impl]

    class SolveCallback(BaseCallback):
        """Evaluates every ``every`` env steps; stops training at the solve or the cap."""

        def __init__(self) -> None:
            super().__init__()
            self.tracker = SolveTracker()
            self.next_eval = every
            self.eval_s = 0.0
            self.venv: Any = None
            self.curve: list[dict[str, float]] = []
            self.solved_at_unix: float | None = None
            self.steps_at_solve: int | None = None
            self.stop_reason = ""

        def _on_step(self) -> bool:
            if time.time() - launch_unix >= cap_s:
                self.stop_reason = "time cap"
                return False
            if self.num_timesteps < self.next_eval:
                return True
            self.next_eval += every
            t0 = time.time()
            if self.venv is None:
                self.venv = gym.vector.SyncVectorEnv(
                    [lambda: gym.make(ENV_ID) for _ in range(EVAL_EPISODES)]
                )
            mean = greedy_eval(
                self.model, self.venv, seed=10_000 * (seed + 1) + 100 * len(self.curve)
            )
            t1 = time.time()
            self.eval_s += t1 - t0
            self.curve.append(
                {
                    "wall_s": round(t1 - launch_unix, 3),
                    "env_steps": int(self.num_timesteps),
                    "return_mean": mean,
                    "eval_s": round(t1 - t0, 3),
                }
            )
            if self.tracker.update(mean):
                self.solved_at_unix = t1
                self.steps_at_solve = int(self.num_timesteps)
                self.stop_reason = "solved"
                return False
            return True

    model, budget = _sb3_model(impl, seed)
    cb = SolveCallback()
    model.learn(total_timesteps=budget, callback=cb)
    if cb.venv is not None:
        cb.venv.close()
    return {
        "impl": impl,
        "seed": seed,
        "solved_at_unix": cb.solved_at_unix,
        "env_steps_to_solve": cb.steps_at_solve,
        "evaluations": len(cb.curve),
        "eval_s": round(cb.eval_s, 3),
        "curve": cb.curve,
        "stop_reason": cb.stop_reason or "zoo step budget",
        "env_steps": int(model.num_timesteps),
        "torch_threads": torch.get_num_threads(),
        "sb3_version": stable_baselines3.__version__,
    }


# -- the parent: launch, wait, read ------------------------------------------------------------


def _launch(make_cmd: Callable[[float], list[str]], cap_s: float) -> ChildRun:
    """Launch one run (see :func:`~rlfleet.bench.children.launch_child`); a run still alive
    ``GRACE_S`` after the cap is terminated with its whole process group."""
    return launch_child(make_cmd, cap_s + GRACE_S, kill_wait_s=KILL_WAIT_S)


def run_rlfleet(seed: int, cap_s: float, overrides: list[str]) -> RunRecord:
    """One ``rlfleet train cartpole`` run in a fresh process, read back from final_eval.json."""
    run_dir = tempfile.mkdtemp(prefix="rlfleet-bench-cartpole-")
    settings = {"run.seed": str(seed), "run.max_seconds": str(cap_s), **PROTOCOL_SETTINGS}
    cmd = train_command("cartpole", run_dir, settings, overrides)
    rec = RunRecord("rlfleet", seed, cap_s, command=cmd)
    child = _launch(lambda _launch_unix: cmd, cap_s)
    launch = child.launch_unix
    rec.process_wall_s = round(child.wall_s, 3)
    path = os.path.join(run_dir, "final_eval.json")
    if not os.path.exists(path):
        rec.error = f"no final_eval.json (exit {child.returncode}): {output_tail(child.stderr)}"
        rec.stop_reason = "error"
        finalize(rec, None, launch)
        print(f"  rlfleet seed {seed}: {rec.error}; run folder kept: {run_dir}", file=sys.stderr)
        return rec
    with open(path) as f:
        fe = json.load(f)
    shutil.rmtree(run_dir, ignore_errors=True)
    return record_from_final_eval(rec, fe, launch)


def record_from_final_eval(rec: RunRecord, fe: dict[str, Any], launch_unix: float) -> RunRecord:
    """Fill an rlfleet record from its run's final_eval.json contents."""
    rec.stop_reason = fe.get("stop_reason", "")
    rec.env_steps = int(fe.get("env_steps", 0))
    rec.curve = list(fe.get("evaluations", []))
    solved_s = fe.get("solved_at_s")
    solved = bool(fe.get("solved")) and solved_s is not None
    if solved:
        rec.evaluations = sum(1 for e in rec.curve if e["wall_s"] <= solved_s + 1e-9)
        rec.env_steps_to_solve = fe.get("solved_at_env_steps")
    else:
        rec.evaluations = len(rec.curve)
    return finalize(rec, fe.get("solved_at_unix") if solved else None, launch_unix)


def run_sb3(impl: str, seed: int, cap_s: float) -> RunRecord:
    """One SB3 run in a fresh ``--child`` process (told its launch time, for the cap)."""

    def make_cmd(launch_unix: float) -> list[str]:
        cmd = [sys.executable, "-m", "rlfleet.bench.cartpole", "--child", impl]
        cmd += ["--seed", str(seed), "--max-seconds", str(cap_s)]
        return cmd + ["--launch-unix", repr(launch_unix)]

    rec = RunRecord(impl, seed, cap_s)
    child = _launch(make_cmd, cap_s)
    rec.command, launch = child.command, child.launch_unix
    rec.process_wall_s = round(child.wall_s, 3)
    lines = child.stdout.strip().splitlines()
    if child.returncode != 0 or not lines:
        rec.error = f"child failed (exit {child.returncode}): {output_tail(child.stderr)}"
        rec.stop_reason = "error"
        return finalize(rec, None, launch)
    res = json.loads(lines[-1])
    rec.stop_reason = res["stop_reason"]
    rec.env_steps = res["env_steps"]
    rec.evaluations = res["evaluations"]
    rec.eval_s = res["eval_s"]
    rec.curve = res["curve"]
    rec.env_steps_to_solve = res["env_steps_to_solve"]
    return finalize(rec, res["solved_at_unix"], launch)


# -- reporting ---------------------------------------------------------------------------------


def _fmt(v: float | None, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def _print_report(records: list[RunRecord], summary: dict[str, Any], rat: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    if not con.is_terminal:  # rich assumes 80 columns when piped; the SB3 tables need more
        con = Console(width=110)
    for impl, s in summary.items():
        sb3 = impl != "rlfleet"
        table = Table(title=f"{impl}: time to solve CartPole-v1 (s from process launch)")
        cols = ["seed", "solved", "time s"]
        cols += ["eval s", "excl. eval s"] if sb3 else []
        cols += ["env steps", "evals", "stop"]
        for c in cols:
            table.add_column(c, justify="left" if c in ("solved", "stop") else "right")
        for r in (r for r in records if r.impl == impl):
            mark = "yes" if r.solved else "[red]no (= cap)[/red]"
            row = [str(r.seed), mark, _fmt(r.time_to_solve_s)]
            row += [_fmt(r.eval_s), _fmt(r.time_excl_eval_s)] if sb3 else []
            row += [_fmt(r.env_steps_to_solve, ",.0f"), str(r.evaluations)]
            row += [r.error or r.stop_reason]
            table.add_row(*row)
        row = ["median", f"{s['solved']}/{s['runs']}", _fmt(s["median_time_to_solve_s"])]
        row += ["", _fmt(s["median_time_excl_eval_s"])] if sb3 else []
        row += [_fmt(s["median_env_steps_to_solve"], ",.0f"), _fmt(s["median_evaluations"], ".0f")]
        table.add_row(*row, "", style="bold")
        con.print(table)
    for impl, r in rat.items():
        if r["bound"] == "n/a":
            con.print(f"{impl} vs rlfleet: n/a (both medians are the cap: mostly unsolved)")
            continue
        con.print(
            f"{impl} median / rlfleet median: [bold]{r['bound']}{_fmt(r['headline'], '.2f')}x"
            f"[/bold] (SB3 excluding its evaluations; including them "
            f"{r['bound']}{_fmt(r['incl_eval'], '.2f')}x)"
        )
    if rat:
        con.print(
            "Time s: from process launch to the end of the second evaluation >= 475. Above 1x "
            "means rlfleet solves faster. SB3 evaluates serially inside its training process "
            "(eval s), rlfleet in a separate evaluator process: the SB3 headline (excl. eval s) "
            "leaves SB3's evaluation time out, which favours SB3. Unsolved runs count as the "
            "cap; a median at the cap turns the ratio into a bound (>= or <=)."
        )


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="rlfleet bench cartpole", description=(__doc__ or "").splitlines()[0]
    )
    p.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="default: 0 1 2 3 4"
    )
    p.add_argument("--json", metavar="PATH", help="write every figure and machine info here")
    p.add_argument(
        "--impls",
        default=None,
        help=f"comma-separated subset of {','.join(IMPLS)} (default: all available)",
    )
    p.add_argument("--max-seconds", type=float, default=120.0, help="cap per run (default 120)")
    add_train_overrides(p)
    add_child_arguments(p, IMPLS[1:])
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rlfleet bench cartpole``; returns the exit code."""
    args = _parse(argv)
    if args.child:
        launch = args.launch_unix if args.launch_unix is not None else time.time()
        print(json.dumps(run_child(args.child, args.seed, args.max_seconds, launch)))
        return 0
    wanted = requested_impls(args.overrides, PROTOCOL_KEYS, args.impls, IMPLS, IMPLS)
    if wanted is None:
        return 2
    impls = [i for i in wanted if i == "rlfleet" or sb3_available()]
    skipped = [i for i in wanted if i not in impls]
    if skipped:
        print(
            f"peers skipped ({', '.join(skipped)}): stable-baselines3 is not installed; "
            'install them with: pip install -e ".[bench]"'
        )
    machine = machine_info(("torch", "gymnasium", "stable-baselines3"))
    print(
        f"CartPole-v1 time to solve: seeds {args.seeds}, cap {args.max_seconds:.0f} s per run, "
        f"{machine['cpu_count']} CPUs, load {machine['load_avg_start'][0]:.1f}; SB3 children use "
        f"torch.set_num_threads({SB3_TORCH_THREADS}), evaluate every "
        f"{SB3_EVAL_EVERY['sb3-dqn']} (DQN) / {SB3_EVAL_EVERY['sb3-ppo']} (PPO) env steps"
    )
    records: list[RunRecord] = []
    for seed in args.seeds:  # implementations interleaved per seed so load drift hits all alike
        for impl in impls:
            if impl == "rlfleet":
                rec = run_rlfleet(seed, args.max_seconds, args.overrides)
            else:
                rec = run_sb3(impl, seed, args.max_seconds)
            records.append(rec)
            status = f"solved in {rec.time_to_solve_s:.1f} s" if rec.solved else "unsolved"
            extra = f" ({rec.time_excl_eval_s:.1f} s excl. eval)" if rec.eval_s is not None else ""
            print(f"  {impl} seed {seed}: {status}{extra}, {rec.error or rec.stop_reason}")
    summary = summarise(records)
    rat = ratios(summary, args.max_seconds)
    _print_report(records, summary, rat)
    if args.json:
        machine["load_avg_end"] = os.getloadavg()
        payload = {
            "benchmark": "cartpole",
            "protocol": {
                "env": ENV_ID,
                "eval_episodes": EVAL_EPISODES,
                "solve_threshold": SOLVE_THRESHOLD,
                "solve_consecutive": SOLVE_CONSECUTIVE,
                "time": "wall clock from process launch to the end of the solving evaluation",
                "cap_s": args.max_seconds,
                "unsolved": "counted as the cap",
                "sb3_eval_every_env_steps": SB3_EVAL_EVERY,
                "sb3_torch_threads": SB3_TORCH_THREADS,
                "sb3_headline": "time excluding SB3's in-process evaluations (favours SB3)",
                "ratios": "peer median / rlfleet median; above 1 means rlfleet is faster",
            },
            "hyperparameters": {"sb3-dqn": ZOO_DQN, "sb3-ppo": ZOO_PPO},
            "rlfleet_overrides": args.overrides,
            "seeds": args.seeds,
            "skipped": skipped,
            "machine": machine,
            "runs": [asdict(r) for r in records],
            "summary": summary,
            "ratios": rat,
        }
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=1)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
