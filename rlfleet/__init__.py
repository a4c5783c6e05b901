"""rlfleet: a fleet of actors feeding one learner (Ape-X, DQfD, IMPALA, PPO, DAgger).

The Python API (:mod:`rlfleet.api`) is available at the top level and loads lazily, so
``import rlfleet`` stays light (no torch)::

    result = rlfleet.train("cartpole", run_dir="runs/cp")
    policy = rlfleet.load_policy(result.run_dir)
    rlfleet.evaluate(policy, episodes=20)
"""

from __future__ import annotations

from typing import Any

from rlfleet.errors import RlfleetError

__version__ = "0.1.0"

#: the API's names, resolved on first use from :mod:`rlfleet.api`
_API = (
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "EvalResult",
    "Evaluation",
    "Policy",
    "RunResult",
    "evaluate",
    "load_policy",
    "resolve_config",
    "train",
)

__all__ = ["RlfleetError", "__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        import importlib

        return getattr(importlib.import_module("rlfleet.api"), name)
    raise AttributeError(f"module 'rlfleet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
