"""Processes and hosts, never algorithms: addresses, per-process bootstrap, placement (processes
or threads), supervision and restarts, the run report, budgets, the local launcher and the host
commands that join a Redis run."""
