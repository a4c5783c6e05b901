"""`rlfleet bench pendulum`: wall-clock time to solve Pendulum-v1, rlfleet presets (Ape-X DPG
and PPO by default) vs SB3 TD3 and SAC with the RL Zoo's hyperparameters.

Protocol (as ``rlfleet bench cartpole``'s, docs/bench-cartpole.md, with Pendulum's criterion;
docs/continuous.md has the commands and figures):

- Pendulum-v1; solved = greedy evaluation mean over 20 episodes >= -200 at two consecutive
  evaluations.
- Time to solve = wall clock from launching the run's process (imports included) to the end of
  the second qualifying evaluation; a run not solved ``--max-seconds`` after its launch counts as
  the cap.
- rlfleet: ``rlfleet train PRESET`` per ``--presets`` (default ``dpg-pendulum ppo-pendulum``), its evaluator a
  separate process.
- SB3 TD3 / SAC with the RL Zoo's Pendulum-v1 hyperparameters (:mod:`.protocol`), in a child
  process evaluating every 1000 env steps inside training (the headline excludes that time,
  which favours SB3), up to the Zoo's step budget.

Modules: :mod:`.protocol`, :mod:`.sb3_child`, :mod:`.cli`; records, reports and the launching of
runs are the CartPole benchmark's (:mod:`benchmarks.cartpole`), parameterised by task.
"""

from benchmarks.pendulum.cli import main

__all__ = ["main"]
