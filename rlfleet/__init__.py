"""rlfleet: a fleet of actors feeding one learner (Ape-X, DQfD, IMPALA)."""

from rlfleet.errors import RlfleetError

__version__ = "0.1.0"
__all__ = ["RlfleetError", "__version__"]
