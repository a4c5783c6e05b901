"""rlfleet from your own code: train, load a run's policy, evaluate it.

    import rlfleet
    result = rlfleet.train("cartpole", overrides={"learner.lr": 3e-4}, run_dir="runs/a")
    policy = rlfleet.load_policy(result.run_dir)
    action = policy(obs)
    print(rlfleet.evaluate(policy, "CartPole-v1", episodes=20))

Attributes load lazily: importing this package imports neither torch nor the fleet.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> module that defines it
_EXPORTS = {
    "train": "rlfleet.api.training",
    "resolve_config": "rlfleet.api.training",
    "RunResult": "rlfleet.fleet.report",
    "load_policy": "rlfleet.api.policy",
    "Policy": "rlfleet.api.policy",
    "evaluate": "rlfleet.api.evaluation",
    "EvalResult": "rlfleet.api.evaluation",
    "Callback": "rlfleet.api.callbacks",
    "EarlyStopping": "rlfleet.api.callbacks",
    "Evaluation": "rlfleet.api.callbacks",
    "Checkpoint": "rlfleet.api.callbacks",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rlfleet.api' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
