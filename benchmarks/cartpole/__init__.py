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
  (``python -m benchmarks.cartpole --child IMPL --seed S ...``) that evaluates serially inside
  the training process: the headline for SB3 excludes its evaluation time, which favours SB3.

Modules: :mod:`.protocol` (implementations, solve criterion, the settings every rlfleet run is
given, the peers' Zoo hyperparameters), :mod:`.records` (the solve tracker and run records, timed
from launch and filled from an rlfleet run's final_eval.json), :mod:`.report` (medians, ratios and
the printed tables), :mod:`.sb3_child` (the SB3 child), :mod:`.runs` (launching runs and reading
them back, through :mod:`benchmarks.children`), :mod:`.cli` (the command line and the JSON
document).
"""

from benchmarks.cartpole.cli import main

__all__ = ["main"]
