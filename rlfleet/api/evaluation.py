"""``rlfleet.evaluate(policy, env_id, episodes)``: episodes played side by side with batched
inference (the evaluator's own loop), one episode per environment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rlfleet.errors import ConfigError

__all__ = ["EvalResult", "evaluate"]


@dataclass(frozen=True)
class EvalResult:
    """Returns and lengths of the episodes, one per entry."""

    returns: np.ndarray
    lengths: np.ndarray

    @property
    def mean(self) -> float:
        return float(self.returns.mean())

    @property
    def std(self) -> float:
        return float(self.returns.std())

    def __str__(self) -> str:
        return (
            f"{len(self.returns)} episodes: return {self.mean:.3f} +- {self.std:.3f} "
            f"(min {self.returns.min():.3f}, max {self.returns.max():.3f}), mean length "
            f"{self.lengths.mean():.1f}"
        )


class _BatchCallable:
    """A plain ``f(obs_batch) -> actions`` as the evaluator's ``act(obs, epsilons)``."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def act(self, obs: np.ndarray, epsilons: np.ndarray) -> np.ndarray:
        return np.asarray(self.fn(obs))


def evaluate(
    policy: Any,
    env_id: str | None = None,
    episodes: int = 20,
    *,
    seed: int = 0,
    env_kwargs: dict | None = None,
    max_episode_steps: int = 0,
    randomize: dict | None = None,
) -> EvalResult:
    """Play ``episodes`` episodes of ``env_id`` with ``policy`` and return their returns.

    Args:
        policy: a :class:`~rlfleet.api.policy.Policy` (an LSTM core is reset per episode), or
            any callable mapping a batch of observations ``[B, *obs_shape]`` to ``[B]`` actions.
        env_id: any id a run accepts (``module:EnvId`` included); default the policy's own
            environment, with its ``env.kwargs`` unless ``env_kwargs`` is given.
        episodes: one environment per episode, env i seeded ``seed + i``.
        max_episode_steps: cut episodes after this many steps (0: the environment's own limit).
        randomize: domain randomization ranges for the episodes (as ``eval.randomize``).
    """
    from rlfleet.agents.common.evaluator import evaluate as run_episodes

    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ConfigError(f"episodes must be an integer >= 1, got {episodes!r}")
    own = getattr(policy, "config", None)
    if env_id is None:
        if own is None:
            raise ConfigError("evaluate() needs env_id for a policy that is not a loaded Policy")
        env_id = own.env.id
    if env_kwargs is None and own is not None and env_id == own.env.id:
        env_kwargs = own.env.kwargs or None
    if hasattr(policy, "act"):
        actor, reset = policy, getattr(policy, "reset", None)
    elif callable(policy):
        actor, reset = _BatchCallable(policy), None
    else:
        raise ConfigError(f"policy {policy!r} is neither a Policy nor callable")
    returns, lengths, _ = run_episodes(
        actor,
        env_id,
        episodes,
        seed,
        max_steps=max_episode_steps,
        env_kwargs=env_kwargs,
        reset_state=reset,
        randomize=randomize,
    )
    return EvalResult(returns=returns, lengths=lengths)
