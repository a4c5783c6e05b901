"""`rlfleet bench minatar`: a MinAtar game on a wall-clock budget, rlfleet vs SB3 PPO side by side.

Protocol (the same for every implementation):

- One MinAtar game (``MinAtar/<Game>-v1``, default Breakout) built by rlfleet's env constructors
  (:func:`rlfleet.envs.make_env`): uint8 [C, 10, 10] observations in {0, 255}, sticky actions 0.1,
  difficulty ramping, the minimal action set, no time limit in training.
- A wall-clock budget (default 30 min) from launching the run's process (interpreter start and
  imports included); checkpoints at given minutes (default 10 and 30). Runs go one after the
  other, each in its own child process, never two at once.
- At every checkpoint minute: the env steps done so far, their average rate since launch
  (env steps / seconds), and the latest greedy evaluation: the mean (± std) return over
  ``eval_episodes`` episodes (default 10), one per environment, each capped at
  ``eval_max_episode_steps`` (default 10000) steps.
- After the budget: a final greedy evaluation over ``final_episodes`` (default 30) episodes.
- Evaluation seeds follow rlfleet's evaluator (``rlfleet/runtime/evaluator.py``, seeded
  ``run.seed + 77`` by the launcher): evaluation round r plays env i seeded ``base + r + i``,
  the final one ``base + 10000 + i``, where ``base = seed + 77``. The evaluation itself is
  rlfleet's :func:`rlfleet.runtime.evaluator.evaluate` for both implementations.
- rlfleet: ``rlfleet train impala-minatar-breakout`` (and, with ``--impls``, the Ape-X preset
  ``minatar-breakout``) with ``run.max_seconds`` = budget. Its evaluator is a separate process
  that evaluates every ``eval_interval_s`` (default 60 s) on the latest parameters; the value at a
  checkpoint minute is the latest evaluation finished by then (so up to one interval old).
  Env steps come from its ``metrics.csv`` (a row every second).
- SB3 PPO (``python -m rlfleet.bench.minatar --child sb3-ppo ...``): the RL Zoo's Atari PPO
  hyperparameters (the Zoo has no MinAtar entry) with the MinAtar paper's network, on the same
  environment with observations scaled to float32 {0.0, 1.0} (exactly what rlfleet's networks
  compute from the uint8 input). It evaluates inside its training process, exactly at the
  checkpoint minutes of its own clock, and that clock EXCLUDES the evaluations' time (which
  favours SB3 slightly: its evaluations are fresh, rlfleet's up to one interval old).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from rlfleet.bench.machine import machine_info

#: implementation -> the rlfleet preset it trains (None: a peer in a --child process)
IMPLS: dict[str, str | None] = {
    "rlfleet-impala": "impala-minatar-breakout",
    "rlfleet-apex": "minatar-breakout",
    "sb3-ppo": None,
}
DEFAULT_IMPLS = ("rlfleet-impala", "sb3-ppo")
DEFAULT_GAME = "breakout"
DEFAULT_BUDGET_MIN = 30.0
DEFAULT_CHECKPOINTS_MIN = (10.0, 30.0)
#: --quick: 1-minute budget, checkpoints at 0.5 and 1 minute, an evaluation every 10 s
QUICK_BUDGET_MIN = 1.0
QUICK_CHECKPOINTS_MIN = (0.5, 1.0)
QUICK_EVAL_INTERVAL_S = 10.0
#: the impala-minatar-breakout preset's evaluation settings, owned here by the protocol
EVAL_EPISODES = 10
FINAL_EPISODES = 30
EVAL_MAX_EPISODE_STEPS = 10_000
EVAL_INTERVAL_S = 60.0
#: rlfleet's launcher seeds the evaluator with run.seed + 77; the final evaluation adds 10_000
#: (rlfleet/runtime/launcher.py, rlfleet/runtime/evaluator.py)
EVAL_SEED_OFFSET = 77
FINAL_EVAL_SEED_OFFSET = 10_000
#: Extra seconds a run may take after the budget to shut down, evaluate and write its results.
GRACE_S = 300.0

# PPO for SB3. The RL Zoo (DLR-RM/rl-baselines3-zoo, hyperparams/ppo.yml, commit 208b6fd) has no
# MinAtar entry, so this is its `atari` entry: n_envs 8, n_steps 128, n_epochs 4, batch_size 256,
# learning_rate lin_2.5e-4, clip_range lin_0.1, vf_coef 0.5, ent_coef 0.01, n_timesteps 1e7
# (gamma 0.99, gae_lambda 0.95, max_grad_norm 0.5: SB3's defaults, which the entry keeps).
# "lin_X" = X * progress_remaining over n_timesteps, so the child trains with that step budget
# and the wall-clock budget stops it long before. Left out of the entry, since MinAtar needs
# neither: AtariWrapper (84x84 grey frames, frame skip, life loss) and frame_stack 4 (MinAtar's
# channels already carry motion trails; rlfleet does not stack either). Its CnnPolicy's NatureCNN
# needs >= 36x36 inputs, so the policy is the MinAtar paper's network (Young & Tian 2019, the same
# as rlfleet's "minatar" torso): Conv(C->16, 3x3, stride 1) + ReLU, Linear(-> 128) + ReLU, then
# linear policy and value heads on the shared features (net_arch=[], as the Zoo's CnnPolicy).
ZOO_PPO: dict[str, Any] = {
    "source": "rl-baselines3-zoo hyperparams/ppo.yml `atari` (no MinAtar entry)",
    "n_timesteps": 10_000_000,
    "n_envs": 8,
    "n_steps": 128,
    "n_epochs": 4,
    "batch_size": 256,
    "learning_rate": "lin_2.5e-4",
    "clip_range": "lin_0.1",
    "vf_coef": 0.5,
    "ent_coef": 0.01,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "max_grad_norm": 0.5,
    "policy": "MinAtar CNN (conv 16 3x3 + fc 128), net_arch=[], shared features",
}


def game_env_id(game: str) -> str:
    """``breakout`` -> ``MinAtar/Breakout-v1`` (the minimal action set, as the presets use)."""
    from rlfleet.envs.minatar import MINATAR_GAMES

    if game not in MINATAR_GAMES:
        raise ValueError(f"unknown MinAtar game {game!r}; valid: {', '.join(MINATAR_GAMES)}")
    return f"MinAtar/{MINATAR_GAMES[game]}-v1"


def usable_cpus() -> int:
    """CPUs this process may run on (what torch gets in a single-process run)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# -- records and pure helpers ------------------------------------------------------------------


@dataclass
class Checkpoint:
    """What one implementation had reached at one checkpoint minute."""

    minute: float
    #: clock seconds of the env-step reading (rlfleet: its metrics row; SB3: its clock, which
    #: excludes its evaluations); None if the run had no reading by then.
    at_s: float | None = None
    env_steps: int | None = None
    #: env_steps / at_s: the average rate since the process launched.
    env_steps_per_s: float | None = None
    eval_return_mean: float | None = None
    eval_return_std: float | None = None
    eval_episodes: int | None = None
    #: clock seconds at which that evaluation finished (SB3: started, its clock stands still).
    eval_at_s: float | None = None
    eval_env_steps: int | None = None


@dataclass
class RunRecord:
    """One run of one implementation with one seed."""

    impl: str
    seed: int
    budget_s: float
    checkpoints: list[Checkpoint] = field(default_factory=list)
    #: the training end: env steps, its clock seconds and the average rate since launch
    end_at_s: float | None = None
    end_env_steps: int | None = None
    end_env_steps_per_s: float | None = None
    final_returns: list[float] = field(default_factory=list)
    final_return_mean: float | None = None
    final_return_std: float | None = None
    #: every evaluation of the run: wall_s, env_steps, return_mean, return_std (+ eval_s for SB3)
    evaluations: list[dict[str, float]] = field(default_factory=list)
    env_steps: int = 0
    updates: int | None = None
    #: SB3 only: seconds spent in its in-process evaluations (left out of its clock)
    eval_s: float | None = None
    stop_reason: str = ""
    process_wall_s: float = 0.0
    error: str | None = None
    run_dir: str | None = None
    command: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def _rate(steps: int | None, seconds: float | None) -> float | None:
    if steps is None or not seconds or seconds <= 0:
        return None
    return round(steps / seconds, 1)


def _stats(returns: Sequence[float]) -> tuple[float | None, float | None]:
    if not returns:
        return None, None
    arr = np.asarray(returns, np.float64)
    return float(arr.mean()), float(arr.std())


def checkpoints_from_history(
    minutes: Sequence[float],
    progress: Sequence[tuple[float, int]],
    evaluations: Sequence[dict[str, Any]],
    eval_episodes: int,
) -> list[Checkpoint]:
    """Checkpoints of an rlfleet run from its env-step history and its evaluations.

    Args:
        minutes: checkpoint minutes.
        progress: (wall_s, env_steps) readings (its metrics rows), in any order.
        evaluations: final_eval.json's ``evaluations`` (wall_s, env_steps, return_mean,
            return_std), in any order.
        eval_episodes: episodes per periodic evaluation (recorded with each checkpoint).

    At minute m (t = 60 m seconds) the reading is the last one at or before t and the
    evaluation the last one finished at or before t; either is None when there is none yet.
    """
    rows = sorted((float(w), int(s)) for w, s in progress)
    evals = sorted(evaluations, key=lambda e: float(e["wall_s"]))
    out = []
    for minute in minutes:
        t = 60.0 * float(minute) + 1e-9
        cp = Checkpoint(minute=float(minute))
        before = [r for r in rows if r[0] <= t]
        if before:
            cp.at_s, cp.env_steps = round(before[-1][0], 3), before[-1][1]
            cp.env_steps_per_s = _rate(cp.env_steps, cp.at_s)
        done = [e for e in evals if float(e["wall_s"]) <= t]
        if done:
            e = done[-1]
            cp.eval_return_mean = float(e["return_mean"])
            cp.eval_return_std = float(e["return_std"]) if "return_std" in e else None
            cp.eval_episodes = eval_episodes
            cp.eval_at_s = float(e["wall_s"])
            cp.eval_env_steps = int(e["env_steps"]) if "env_steps" in e else None
        out.append(cp)
    return out


def record_from_run(
    rec: RunRecord,
    final_eval: dict[str, Any],
    progress: Sequence[tuple[float, int]],
    minutes: Sequence[float],
    eval_episodes: int,
) -> RunRecord:
    """Fill an rlfleet record from its final_eval.json contents and its env-step history."""
    rec.stop_reason = str(final_eval.get("stop_reason", ""))
    rec.env_steps = int(final_eval.get("env_steps", 0))
    rec.updates = final_eval.get("updates")
    rec.evaluations = [dict(e) for e in final_eval.get("evaluations", [])]
    rec.checkpoints = checkpoints_from_history(minutes, progress, rec.evaluations, eval_episodes)
    if progress:
        wall, steps = max((float(w), int(s)) for w, s in progress)
        rec.end_at_s, rec.end_env_steps = round(wall, 3), steps
        rec.end_env_steps_per_s = _rate(steps, wall)
    rec.final_returns = [float(r) for r in final_eval.get("final_returns") or []]
    rec.final_return_mean, rec.final_return_std = _stats(rec.final_returns)
    return rec


def record_from_child(rec: RunRecord, res: dict[str, Any]) -> RunRecord:
    """Fill a peer's record from the JSON its ``--child`` process printed."""
    rec.checkpoints = [Checkpoint(**c) for c in res["checkpoints"]]
    rec.evaluations = list(res["evaluations"])
    rec.env_steps = int(res["env_steps"])
    rec.end_at_s = res["end_at_s"]
    rec.end_env_steps = int(res["env_steps"])
    rec.end_env_steps_per_s = _rate(rec.end_env_steps, rec.end_at_s)
    rec.final_returns = [float(r) for r in res["final_returns"]]
    rec.final_return_mean, rec.final_return_std = _stats(rec.final_returns)
    rec.eval_s = res["eval_s"]
    rec.stop_reason = res["stop_reason"]
    rec.details = {k: res[k] for k in ("sb3_version", "torch_threads", "n_envs") if k in res}
    return rec


def table_rows(records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """One row per (run, checkpoint) and one ``final`` row per run, as the table prints them."""
    rows: list[dict[str, Any]] = []
    for r in records:
        for cp in r.checkpoints:
            rows.append(
                {
                    "impl": r.impl,
                    "seed": r.seed,
                    "minute": _fmt_minute(cp.minute),
                    "env_steps": cp.env_steps,
                    "env_steps_per_s": cp.env_steps_per_s,
                    "return_mean": cp.eval_return_mean,
                    "return_std": cp.eval_return_std,
                    "episodes": cp.eval_episodes,
                    "eval_at_s": cp.eval_at_s,
                    "note": "",
                }
            )
        rows.append(
            {
                "impl": r.impl,
                "seed": r.seed,
                "minute": "final",
                "env_steps": r.end_env_steps,
                "env_steps_per_s": r.end_env_steps_per_s,
                "return_mean": r.final_return_mean,
                "return_std": r.final_return_std,
                "episodes": len(r.final_returns) or None,
                "eval_at_s": None,
                "note": r.error or r.stop_reason,
            }
        )
    return rows


def _fmt_minute(minute: float) -> str:
    return f"{minute:g}"


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def format_return(mean: float | None, std: float | None, episodes: int | None) -> str:
    """``11.3 ± 4.2 (10)``; ``-`` without an evaluation."""
    if mean is None:
        return "-"
    text = f"{mean:.1f}" if std is None else f"{mean:.1f} ± {std:.1f}"
    return f"{text} ({episodes})" if episodes else text


def build_payload(
    records: Sequence[RunRecord],
    *,
    game: str,
    budget_s: float,
    minutes: Sequence[float],
    eval_interval_s: float,
    eval_episodes: int,
    final_episodes: int,
    seeds: Sequence[int],
    overrides: Sequence[str],
    skipped: Sequence[str],
    quick: bool,
    machine: dict[str, Any],
    sb3_torch_threads: int | None = None,
) -> dict[str, Any]:
    """The JSON document ``--json`` writes."""
    return {
        "benchmark": "minatar",
        "quick": quick,
        "protocol": {
            "env": game_env_id(game),
            "budget_s": budget_s,
            "checkpoint_minutes": list(minutes),
            "eval_episodes": eval_episodes,
            "final_episodes": final_episodes,
            "eval_max_episode_steps": EVAL_MAX_EPISODE_STEPS,
            "rlfleet_eval_interval_s": eval_interval_s,
            "eval_seeds": (
                f"round r: env i seeded seed + {EVAL_SEED_OFFSET} + r + i; final: seed + "
                f"{EVAL_SEED_OFFSET} + {FINAL_EVAL_SEED_OFFSET} + i"
            ),
            "clock": "seconds from launching the run's process; SB3's clock excludes its "
            "in-process evaluations",
            "env_steps_per_s": "env steps / clock seconds at the reading (average since launch)",
            "checkpoint_eval": "rlfleet: the latest periodic evaluation finished by the minute; "
            "SB3: evaluated at the minute of its clock",
            "sequential": "one run at a time, each in its own process",
            "sb3_torch_threads": sb3_torch_threads,
        },
        "presets": {k: v for k, v in IMPLS.items() if v},
        "hyperparameters": {"sb3-ppo": ZOO_PPO},
        "rlfleet_overrides": list(overrides),
        "seeds": list(seeds),
        "skipped": list(skipped),
        "machine": machine,
        "runs": [asdict(r) for r in records],
        "table": table_rows(records),
    }


# -- the SB3 child -----------------------------------------------------------------------------


def linear_schedule(initial: float) -> Callable[[float], float]:
    """The Zoo's ``lin_X``: X * progress_remaining (1 at the start, 0 at n_timesteps)."""

    def schedule(progress_remaining: float) -> float:
        return progress_remaining * initial

    return schedule


def scale_observation(obs: np.ndarray) -> np.ndarray:
    """uint8 {0, 255} -> float32 {0.0, 1.0}: the same arithmetic as rlfleet's networks."""
    return obs.astype(np.float32) * np.float32(1.0 / 255.0)


@cache
def _sb3_classes() -> tuple[type, type]:
    """(the float-observation wrapper, the MinAtar CNN feature extractor), built on first use so
    that importing this module needs neither torch nor stable-baselines3."""
    import gymnasium as gym
    import torch
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    from torch import nn

    class FloatObservation(gym.ObservationWrapper):
        """rlfleet's uint8 [C, 10, 10] in {0, 255} as float32 in {0.0, 1.0} (what SB3 expects)."""

        def __init__(self, env: gym.Env) -> None:
            super().__init__(env)
            shape = env.observation_space.shape
            self.observation_space = gym.spaces.Box(0.0, 1.0, shape=shape, dtype=np.float32)

        def observation(self, observation: np.ndarray) -> np.ndarray:
            return scale_observation(observation)

    class MinAtarCNN(BaseFeaturesExtractor):
        """The MinAtar paper's network: Conv(C->16, 3x3, stride 1) + ReLU, Linear(-> 128) + ReLU."""

        def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 128) -> None:
            super().__init__(observation_space, features_dim)
            c, h, w = observation_space.shape
            self.net = nn.Sequential(
                nn.Conv2d(c, 16, 3, stride=1),
                nn.ReLU(),
                nn.Flatten(),
                nn.Linear(16 * (h - 2) * (w - 2), features_dim),
                nn.ReLU(),
            )

        def forward(self, observations: torch.Tensor) -> torch.Tensor:
            return self.net(observations)

    return FloatObservation, MinAtarCNN


def make_sb3_vec_env(env_id: str, n_envs: int) -> Any:
    """SB3 DummyVecEnv of rlfleet's env (make_env) with float observations, under VecMonitor.

    Seeding is left to the model (``PPO(seed=s)`` seeds env i with ``s + i``, as rlfleet's
    BatchedEnv does).
    """
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

    from rlfleet.envs import make_env

    float_obs, _ = _sb3_classes()
    return VecMonitor(DummyVecEnv([lambda: float_obs(make_env(env_id)) for _ in range(n_envs)]))


class GreedySB3Policy:
    """An SB3 model behind the ``act(obs, epsilons)`` interface rlfleet's evaluator calls."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def act(self, obs: np.ndarray, epsilons: np.ndarray) -> np.ndarray:
        """Greedy (deterministic) actions for a batch of uint8 observations; epsilon must be 0."""
        if np.any(np.asarray(epsilons) > 0):
            raise ValueError("the benchmark evaluates greedily (epsilon 0)")
        actions, _ = self.model.predict(scale_observation(obs), deterministic=True)
        return np.asarray(actions, dtype=np.int64)


def sb3_ppo_model(env_id: str, seed: int) -> Any:
    """SB3 PPO with the Zoo's Atari hyperparameters and the MinAtar CNN (see ZOO_PPO)."""
    from stable_baselines3 import PPO

    _, cnn = _sb3_classes()
    h = ZOO_PPO
    return PPO(
        "CnnPolicy",
        make_sb3_vec_env(env_id, h["n_envs"]),
        n_steps=h["n_steps"],
        n_epochs=h["n_epochs"],
        batch_size=h["batch_size"],
        learning_rate=linear_schedule(2.5e-4),
        clip_range=linear_schedule(0.1),
        vf_coef=h["vf_coef"],
        ent_coef=h["ent_coef"],
        gamma=h["gamma"],
        gae_lambda=h["gae_lambda"],
        max_grad_norm=h["max_grad_norm"],
        policy_kwargs={
            "features_extractor_class": cnn,
            "features_extractor_kwargs": {"features_dim": 128},
            "net_arch": [],
            "normalize_images": False,
        },
        seed=seed,
        device="cpu",
        verbose=0,
    )


def run_child(
    impl: str,
    seed: int,
    game: str,
    budget_s: float,
    checkpoints_s: Sequence[float],
    launch_unix: float,
    eval_episodes: int = EVAL_EPISODES,
    final_episodes: int = FINAL_EPISODES,
    torch_threads: int | None = None,
) -> dict[str, Any]:
    """Train SB3 PPO until ``budget_s`` of its clock (launch -> now, minus its evaluations),
    evaluating at each checkpoint; then the final evaluation. Returns the report as a dict."""
    if impl != "sb3-ppo":
        raise ValueError(f"no --child implementation {impl!r}")
    import stable_baselines3
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    from rlfleet.runtime.evaluator import evaluate

    torch.set_num_threads(torch_threads or usable_cpus())
    env_id = game_env_id(game)
    base = seed + EVAL_SEED_OFFSET
    marks = sorted(float(c) for c in checkpoints_s)

    def run_eval(model: Any, episodes: int, eval_seed: int) -> list[float]:
        returns, _, _ = evaluate(
            GreedySB3Policy(model), env_id, episodes, eval_seed, 0.0, EVAL_MAX_EPISODE_STEPS
        )
        return [float(r) for r in returns]

    class CheckpointCallback(BaseCallback):
        """At each checkpoint of the clock (excluding evaluations): evaluate; stop at the budget."""

        def __init__(self) -> None:
            super().__init__()
            self.eval_s = 0.0
            self.pending = list(marks)
            self.checkpoints: list[dict[str, Any]] = []
            self.evaluations: list[dict[str, float]] = []
            self.stop_reason = ""

        def clock(self) -> float:
            return time.time() - launch_unix - self.eval_s

        def _on_step(self) -> bool:
            now = self.clock()
            while self.pending and now >= self.pending[0]:
                mark = self.pending.pop(0)
                steps = int(self.num_timesteps)
                t0 = time.time()
                returns = run_eval(self.model, eval_episodes, base + len(self.evaluations))
                spent = time.time() - t0
                self.eval_s += spent
                mean, std = _stats(returns)
                self.evaluations.append(
                    {
                        "wall_s": round(now, 3),
                        "env_steps": steps,
                        "return_mean": mean,
                        "return_std": std,
                        "eval_s": round(spent, 3),
                    }
                )
                cp = Checkpoint(
                    minute=mark / 60.0,
                    at_s=round(now, 3),
                    env_steps=steps,
                    env_steps_per_s=_rate(steps, now),
                    eval_return_mean=mean,
                    eval_return_std=std,
                    eval_episodes=eval_episodes,
                    eval_at_s=round(now, 3),
                    eval_env_steps=steps,
                )
                self.checkpoints.append(asdict(cp))
            if now >= budget_s:
                self.stop_reason = "time budget"
                return False
            return True

    model = sb3_ppo_model(env_id, seed)
    cb = CheckpointCallback()
    model.learn(total_timesteps=ZOO_PPO["n_timesteps"], callback=cb)
    end_at = cb.clock()
    t0 = time.time()
    final = run_eval(model, final_episodes, base + FINAL_EVAL_SEED_OFFSET)
    final_s = time.time() - t0
    model.get_env().close()
    return {
        "impl": impl,
        "seed": seed,
        "checkpoints": cb.checkpoints,
        "evaluations": cb.evaluations,
        "env_steps": int(model.num_timesteps),
        "end_at_s": round(end_at, 3),
        "final_returns": final,
        "final_eval_s": round(final_s, 3),
        "eval_s": round(cb.eval_s, 3),
        "stop_reason": cb.stop_reason or "zoo step budget",
        "torch_threads": torch.get_num_threads(),
        "n_envs": ZOO_PPO["n_envs"],
        "sb3_version": stable_baselines3.__version__,
    }


# -- the parent: launch, wait, read ------------------------------------------------------------


def _launch(
    make_cmd: Callable[[float], list[str]], timeout_s: float
) -> tuple[list[str], float, int | None, str, str]:
    """Start ``make_cmd(launch_unix)`` in its own session and wait for it.

    Returns (cmd, wall seconds, exit code or None if it had to be killed, stdout, stderr). A run
    still alive after ``timeout_s`` is terminated with its whole process group.
    """
    launch = time.time()
    cmd = make_cmd(launch)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    out, err = "", ""
    try:
        out, err = proc.communicate(timeout=timeout_s)
        rc: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        rc = None
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                out, err = proc.communicate(timeout=30.0)
                break
            except subprocess.TimeoutExpired:
                continue
    return cmd, time.time() - launch, rc, out or "", err or ""


def _tail(text: str, n: int = 3) -> str:
    return " | ".join(text.strip().splitlines()[-n:])


def rlfleet_settings(
    game: str,
    seed: int,
    budget_s: float,
    eval_interval_s: float,
    eval_episodes: int,
    final_episodes: int,
) -> dict[str, str]:
    """The ``--set`` values the protocol passes to every rlfleet run (refused as overrides)."""
    return {
        "env.id": game_env_id(game),
        "run.seed": str(seed),
        "run.max_seconds": repr(float(budget_s)),
        "run.total_env_steps": "0",
        "run.stop_on_solve": "false",
        "eval.episodes": str(eval_episodes),
        "eval.final_episodes": str(final_episodes),
        "eval.epsilon": "0.0",
        "eval.max_episode_steps": str(EVAL_MAX_EPISODE_STEPS),
        "eval.interval_s": repr(float(eval_interval_s)),
        "eval.video": "false",
    }


PROTOCOL_KEYS = tuple(rlfleet_settings(DEFAULT_GAME, 0, 1.0, 1.0, 1, 1))


def run_rlfleet(
    impl: str,
    seed: int,
    game: str,
    budget_s: float,
    minutes: Sequence[float],
    *,
    eval_interval_s: float = EVAL_INTERVAL_S,
    eval_episodes: int = EVAL_EPISODES,
    final_episodes: int = FINAL_EPISODES,
    overrides: Sequence[str] = (),
    run_root: str | None = None,
) -> RunRecord:
    """One ``rlfleet train PRESET`` run in a fresh process, read back from its run folder.

    The run folder is kept under ``run_root`` when given (and whenever the run failed), removed
    otherwise.
    """
    from rlfleet.runtime.metrics import read_metrics

    preset = IMPLS[impl]
    if preset is None:
        raise ValueError(f"{impl} is not an rlfleet implementation")
    if run_root:
        Path(run_root).mkdir(parents=True, exist_ok=True)
        run_dir = tempfile.mkdtemp(prefix=f"{impl}-s{seed}-", dir=run_root)
    else:
        run_dir = tempfile.mkdtemp(prefix=f"rlfleet-bench-minatar-{impl}-")
    settings = rlfleet_settings(
        game, seed, budget_s, eval_interval_s, eval_episodes, final_episodes
    )
    cmd = [sys.executable, "-m", "rlfleet.cli.main", "train", preset, "--quiet"]
    cmd += ["--run-dir", run_dir]
    for ov in [f"{k}={v}" for k, v in settings.items()] + list(overrides):
        cmd += ["--set", ov]
    rec = RunRecord(impl, seed, budget_s, command=cmd, details={"preset": preset})
    _, wall, rc, _, err = _launch(lambda _launch_unix: cmd, budget_s + GRACE_S)
    rec.process_wall_s = round(wall, 3)
    path = Path(run_dir) / "final_eval.json"
    if not path.exists():
        rec.error = f"no final_eval.json (exit {rc}): {_tail(err)}"
        rec.stop_reason = "error"
        rec.run_dir = run_dir
        print(f"  {impl} seed {seed}: {rec.error}; run folder kept: {run_dir}", file=sys.stderr)
        return rec
    final_eval = json.loads(path.read_text())
    try:
        rows = read_metrics(run_dir).get("env/steps_per_s", [])
    except FileNotFoundError:
        rows = []
    progress = [(wall_s, steps) for wall_s, steps, _, _ in rows]
    record_from_run(rec, final_eval, progress, minutes, eval_episodes)
    if rc != 0:
        rec.error = f"exit {rc}: {_tail(err)}"
    if run_root or rec.error:
        rec.run_dir = run_dir
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
    return rec


def run_sb3(
    impl: str,
    seed: int,
    game: str,
    budget_s: float,
    minutes: Sequence[float],
    *,
    eval_episodes: int = EVAL_EPISODES,
    final_episodes: int = FINAL_EPISODES,
    torch_threads: int | None = None,
) -> RunRecord:
    """One SB3 run in a fresh ``--child`` process (told its launch time, for its clock)."""

    def make_cmd(launch_unix: float) -> list[str]:
        cmd = [sys.executable, "-m", "rlfleet.bench.minatar", "--child", impl]
        cmd += ["--seed", str(seed), "--game", game, "--budget-s", repr(float(budget_s))]
        cmd += ["--checkpoints-s", *(repr(60.0 * float(m)) for m in minutes)]
        cmd += ["--eval-episodes", str(eval_episodes), "--final-episodes", str(final_episodes)]
        cmd += ["--torch-threads", str(torch_threads or usable_cpus())]
        return cmd + ["--launch-unix", repr(launch_unix)]

    rec = RunRecord(impl, seed, budget_s)
    # its evaluations are off its clock, so allow for them on top of the grace period
    rec.command, wall, rc, out, err = _launch(make_cmd, 2 * budget_s + GRACE_S)
    rec.process_wall_s = round(wall, 3)
    lines = out.strip().splitlines()
    if rc != 0 or not lines:
        rec.error = f"child failed (exit {rc}): {_tail(err)}"
        rec.stop_reason = "error"
        rec.checkpoints = [Checkpoint(minute=float(m)) for m in minutes]
        return rec
    return record_from_child(rec, json.loads(lines[-1]))


# -- reporting ---------------------------------------------------------------------------------


def print_report(records: Sequence[RunRecord], env_id: str, budget_s: float) -> None:
    """The side-by-side table and how to read it."""
    from rich.console import Console
    from rich.table import Table

    con = Console()
    if not con.is_terminal:  # rich assumes 80 columns when piped
        con = Console(width=120)
    table = Table(title=f"{env_id}: {budget_s / 60:g}-minute budget, one run at a time")
    for c in ("impl", "seed", "minute", "env steps", "env steps/s", "eval return", "eval at s"):
        table.add_column(c, justify="left" if c in ("impl", "eval return") else "right")
    table.add_column("stop", justify="left")
    for row in table_rows(records):
        table.add_row(
            row["impl"],
            str(row["seed"]),
            row["minute"],
            _fmt(row["env_steps"], ",d"),
            _fmt(row["env_steps_per_s"], ",.0f"),
            format_return(row["return_mean"], row["return_std"], row["episodes"]),
            _fmt(row["eval_at_s"], ".0f"),
            row["note"],
            style="bold" if row["minute"] == "final" else None,
        )
    con.print(table)
    con.print(
        "minute: the checkpoint; env steps/s: env steps / seconds since the process launched. "
        "eval return: greedy mean ± std over the episodes in brackets; rlfleet's is its latest "
        "periodic evaluation finished by that minute (finished at 'eval at s'), SB3's is taken "
        "at the minute. SB3's clock excludes its own in-process evaluations (favours SB3). "
        "final: the final evaluation after the budget."
    )


# -- command line ------------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="rlfleet bench minatar", description=(__doc__ or "").splitlines()[0]
    )
    p.add_argument("--game", default=DEFAULT_GAME, help=f"MinAtar game (default {DEFAULT_GAME})")
    p.add_argument(
        "--budget-minutes",
        type=float,
        default=None,
        help=f"wall-clock budget per run (default {DEFAULT_BUDGET_MIN:g})",
    )
    p.add_argument(
        "--checkpoints",
        type=float,
        nargs="+",
        default=None,
        metavar="MINUTE",
        help="checkpoint minutes (default 10 30); at most the budget",
    )
    p.add_argument(
        "--impls",
        default=None,
        help=f"comma-separated subset of {','.join(IMPLS)} (default: {','.join(DEFAULT_IMPLS)})",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="default: 0")
    p.add_argument(
        "--eval-interval",
        type=float,
        default=None,
        metavar="S",
        help=f"rlfleet's seconds between evaluations (default {EVAL_INTERVAL_S:g}, quick "
        f"{QUICK_EVAL_INTERVAL_S:g})",
    )
    p.add_argument(
        "--eval-episodes", type=int, default=EVAL_EPISODES, help="episodes per evaluation"
    )
    p.add_argument(
        "--final-episodes", type=int, default=FINAL_EPISODES, help="episodes of the final one"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_BUDGET_MIN:g}-minute budget, checkpoints at "
        f"{' and '.join(f'{m:g}' for m in QUICK_CHECKPOINTS_MIN)} min (a smoke run)",
    )
    p.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        metavar="N",
        help="torch threads of the SB3 process (default: the CPUs this process may use)",
    )
    p.add_argument("--json", metavar="PATH", help="write every figure and machine info here")
    p.add_argument("--run-root", metavar="DIR", help="keep the rlfleet run folders under DIR")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="passed to rlfleet train as --set (repeatable)",
    )
    p.add_argument(
        "--child", choices=[k for k, v in IMPLS.items() if v is None], help=argparse.SUPPRESS
    )
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--budget-s", type=float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--checkpoints-s", type=float, nargs="+", default=[], help=argparse.SUPPRESS)
    p.add_argument("--launch-unix", type=float, default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _sb3_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("stable_baselines3") is not None


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rlfleet bench minatar``; returns the exit code."""
    args = _parse(argv)
    if args.child:
        launch = args.launch_unix if args.launch_unix is not None else time.time()
        res = run_child(
            args.child,
            args.seed,
            args.game,
            args.budget_s,
            args.checkpoints_s,
            launch,
            args.eval_episodes,
            args.final_episodes,
            args.torch_threads,
        )
        print(json.dumps(res))
        return 0
    from rlfleet.envs.minatar import minatar_available

    try:
        env_id = game_env_id(args.game)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not minatar_available():
        print('MinAtar is not installed: pip install -e ".[minatar]"', file=sys.stderr)
        return 2
    budget_min = args.budget_minutes or (QUICK_BUDGET_MIN if args.quick else DEFAULT_BUDGET_MIN)
    minutes = args.checkpoints or list(
        QUICK_CHECKPOINTS_MIN if args.quick else DEFAULT_CHECKPOINTS_MIN
    )
    minutes = sorted(set(minutes))
    if minutes[0] <= 0 or minutes[-1] > budget_min:
        print(f"--checkpoints must lie in (0, {budget_min:g}] minutes", file=sys.stderr)
        return 2
    eval_interval = args.eval_interval or (QUICK_EVAL_INTERVAL_S if args.quick else EVAL_INTERVAL_S)
    owned = [o for o in args.overrides if o.split("=", 1)[0].strip() in PROTOCOL_KEYS]
    if owned:
        print(
            f"--set {owned[0]}: the benchmark protocol fixes {', '.join(PROTOCOL_KEYS)}",
            file=sys.stderr,
        )
        return 2
    wanted = [s.strip() for s in args.impls.split(",")] if args.impls else list(DEFAULT_IMPLS)
    unknown = [w for w in wanted if w not in IMPLS]
    if unknown:
        print(f"unknown --impls {unknown}; valid: {', '.join(IMPLS)}", file=sys.stderr)
        return 2
    impls = [i for i in wanted if IMPLS[i] is not None or _sb3_available()]
    skipped = [i for i in wanted if i not in impls]
    if skipped:
        print(
            f"peers skipped ({', '.join(skipped)}): stable-baselines3 is not installed; "
            'install it with: pip install -e ".[bench]"'
        )
    budget_s = 60.0 * budget_min
    machine = machine_info(("torch", "gymnasium", "stable-baselines3", "minatar"))
    print(
        f"{env_id}: {', '.join(impls)}; seeds {args.seeds}; {budget_min:g}-minute budget per "
        f"run, checkpoints at {', '.join(f'{m:g}' for m in minutes)} min; one run at a time; "
        f"{machine['cpu_count']} CPUs, load {machine['load_avg_start'][0]:.1f}"
        + (
            f"; SB3 uses torch.set_num_threads({args.torch_threads or usable_cpus()})"
            if "sb3-ppo" in impls
            else ""
        )
    )
    records: list[RunRecord] = []
    for seed in args.seeds:
        for impl in impls:
            print(f"  {impl} seed {seed}: running ({budget_min:g} min) ...", flush=True)
            if IMPLS[impl] is None:
                rec = run_sb3(
                    impl,
                    seed,
                    args.game,
                    budget_s,
                    minutes,
                    eval_episodes=args.eval_episodes,
                    final_episodes=args.final_episodes,
                    torch_threads=args.torch_threads,
                )
            else:
                rec = run_rlfleet(
                    impl,
                    seed,
                    args.game,
                    budget_s,
                    minutes,
                    eval_interval_s=eval_interval,
                    eval_episodes=args.eval_episodes,
                    final_episodes=args.final_episodes,
                    overrides=args.overrides,
                    run_root=args.run_root,
                )
            records.append(rec)
            final = format_return(
                rec.final_return_mean, rec.final_return_std, len(rec.final_returns) or None
            )
            print(
                f"  {impl} seed {seed}: {rec.end_env_steps or 0:,} env steps, final eval {final}; "
                f"{rec.error or rec.stop_reason}"
            )
    print_report(records, env_id, budget_s)
    if args.json:
        machine["load_avg_end"] = os.getloadavg()
        payload = build_payload(
            records,
            game=args.game,
            budget_s=budget_s,
            minutes=minutes,
            eval_interval_s=eval_interval,
            eval_episodes=args.eval_episodes,
            final_episodes=args.final_episodes,
            seeds=args.seeds,
            overrides=args.overrides,
            skipped=skipped,
            quick=args.quick,
            machine=machine,
            sb3_torch_threads=args.torch_threads or usable_cpus(),
        )
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=1)
        print(f"wrote {args.json}")
    return 1 if any(r.error for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
