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
- Evaluation seeds follow rlfleet's evaluator (``rlfleet/agents/common/evaluator.py``, seeded
  ``run.seed + 77`` by the launcher): evaluation round r plays env i seeded ``base + r + i``,
  the final one ``base + 10000 + i``, where ``base = seed + 77``. The evaluation itself is
  rlfleet's :func:`rlfleet.agents.common.evaluator.evaluate` for both implementations.
- rlfleet: ``rlfleet train impala-minatar-breakout`` (and, with ``--impls``, the Ape-X preset
  ``minatar-breakout``) with ``run.max_seconds`` = budget. Its evaluator is a separate process
  that evaluates every ``eval_interval_s`` (default 60 s) on the latest parameters; the value at a
  checkpoint minute is the latest evaluation finished by then (so up to one interval old).
  Env steps come from its ``metrics.csv`` (a row every second).
- SB3 PPO (``python -m benchmarks.minatar --child sb3-ppo ...``): the RL Zoo's Atari PPO
  hyperparameters (the Zoo has no MinAtar entry) with the MinAtar paper's network, on the same
  environment with observations scaled to float32 {0.0, 1.0} (exactly what rlfleet's networks
  compute from the uint8 input). It evaluates inside its training process, exactly at the
  checkpoint minutes of its own clock, and that clock EXCLUDES the evaluations' time (which
  favours SB3 slightly: its evaluations are fresh, rlfleet's up to one interval old).

Modules: :mod:`.protocol` (implementations, budgets, evaluation settings, the peer's
hyperparameters), :mod:`.records` (checkpoints and run records), :mod:`.report` (table and JSON
document), :mod:`.sb3_ppo` (the SB3 child), :mod:`.runs` (launching runs and reading them back,
through :mod:`benchmarks.children`), :mod:`.cli` (the command line).
"""

from benchmarks.minatar.cli import main

__all__ = ["main"]
