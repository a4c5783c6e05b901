"""What each role of a local fleet is started with: its main and plain arguments.

The role mains (:data:`rlfleet.fleet.bootstrap.ROLE_MAINS`) take strings and numbers only, so a
role starts the same way in a forkserver child, a thread or another process manager.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rlfleet.fleet import bootstrap
from rlfleet.fleet.addresses import FleetAddresses

__all__ = ["RoleLaunch"]


@dataclass(frozen=True)
class RoleLaunch:
    """``launch(kind, index, incarnation) -> (main, args)`` for the :class:`Supervisor`.

    Attributes:
        config_json: the run's config as JSON.
        addresses: where the roles find the launcher and each other.
        run_dir: the run folder (learner checkpoints, evaluator videos).
        seed: ``run.seed``; each role derives its own from it.
        num_actors: actors on this host.
        resume_from: the checkpoint to resume from, or ``""``.
        clock_start: the run's clock origin (Unix time): a resumed run's clock continues.
    """

    config_json: str
    addresses: FleetAddresses
    run_dir: str
    seed: int
    num_actors: int
    resume_from: str
    clock_start: float

    def __call__(self, kind: str, index: int, incarnation: int) -> tuple[Callable, tuple]:
        seed = self.seed
        if kind == "actor":
            # a restarted actor explores with other random numbers than the one that died
            role_seed = seed * 100_003 + 1000 * (index + 1) + 7919 * incarnation
            args: tuple = (self.config_json, self.addresses, index, self.num_actors, role_seed)
        elif kind == "learner":
            # the run's clock starts at t0 - wall_offset: the learner's checkpoints then carry
            # elapsed_s on the clock of metrics.csv's wall_s (a resume cuts the rows after it)
            args = (
                self.config_json,
                self.addresses,
                self.run_dir,
                seed,
                self.resume_from,
                self.clock_start,
            )
        elif kind == "service":
            args = (self.config_json, self.addresses, seed + 313)
        else:
            args = (self.config_json, self.addresses, self.run_dir, seed + 77)
        return bootstrap.ROLE_MAINS[kind], args
