"""The evaluator role: greedy episodes with the latest parameters, periodic and final.

Greedy is what the run's agent says (``spec.make_eval_policy``, :func:`eval_policy`): by default
the argmax of the network's scores (:class:`ActionScores`): Q-values for Ape-X, policy logits for
IMPALA, class scores for DAgger; for Box actions the policy's mean, squashed or clipped into the
bounds. Episodes are domain-randomized as ``eval.randomize`` (else ``env.randomize``) says.

Each evaluation runs ``episodes`` environments side by side, one episode each, with batched
greedy inference, so it costs about one episode's worth of steps in wall-clock. A network with an
LSTM core plays each episode from a zero state (``ActionScores.reset``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rlfleet.agents.common.checkpoint import save_policy
from rlfleet.agents.common.networks import eval_policy
from rlfleet.agents.common.video import save_gif
from rlfleet.config import to_dict
from rlfleet.envs import make_vector_env
from rlfleet.envs.spec import EnvSpec, probe_env
from rlfleet.models.params import load_flat, param_count
from rlfleet.transport.ports import CMD_FINAL_EVAL, CMD_STOP, ParamSource, StatusLink


def evaluate(
    policy: Any,
    env_id: str,
    episodes: int,
    seed: int,
    epsilon: float = 0.0,
    max_steps: int = 0,
    record: bool = False,
    env_kwargs: dict | None = None,
    reset_state: Callable[[np.ndarray | None], None] | None = None,
    randomize: dict | None = None,
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Returns, lengths of ``episodes`` evaluation episodes, and env 0's observations if asked.

    ``policy.act(obs, epsilons)`` picks the actions. ``reset_state`` (for policies with a
    recurrent core, e.g. ``ArgmaxPolicy.reset``) is called with None before the first step and
    with the mask of ended episodes after each step.
    """
    venv = make_vector_env(
        env_id, episodes, seed, training=False, env_kwargs=env_kwargs, randomize=randomize
    )
    obs = venv.reset()
    if reset_state is not None:
        reset_state(None)
    returns = np.full(episodes, np.nan)
    lengths = np.zeros(episodes, np.int64)
    running = np.zeros(episodes, np.float64)
    steps = np.zeros(episodes, np.int64)
    eps = np.full(episodes, epsilon)
    frames: list[np.ndarray] = [obs[0].copy()] if record else []
    while np.isnan(returns).any():
        step = venv.step(policy.act(obs, eps))
        open_ = np.isnan(returns)
        running += np.where(open_, step.reward, 0.0)
        steps += open_
        done = (step.terminated | step.truncated) & open_
        if max_steps:
            done |= open_ & (steps >= max_steps)
        if done.any():
            # the wrapper's own tracking is exact for the unclipped score; fall back to ours
            tracked = np.where(np.isnan(step.episode_returns), running, step.episode_returns)
            returns[done] = tracked[done]
            lengths[done] = steps[done]
            if reset_state is not None:
                reset_state(step.terminated | step.truncated)
        if record and open_[0]:
            frames.append(step.next_obs[0].copy())
        obs = step.obs
    venv.close()
    return returns, lengths, frames


class Best:
    """The best-evaluated parameters so far (highest periodic mean return; the first of equals)."""

    def __init__(self) -> None:
        self.version = 0
        self.return_mean = -float("inf")
        self.flat: np.ndarray | None = None

    def improved_by(self, version: int, return_mean: float, flat: np.ndarray) -> bool:
        """Keep ``flat`` if ``return_mean`` beats the best so far; whether it did."""
        if return_mean <= self.return_mean:
            return False
        self.version, self.return_mean, self.flat = version, return_mean, flat.copy()
        return True

    def state(self, config: Any) -> dict[str, Any]:
        return {
            "config": to_dict(config),
            "version": self.version,
            "eval_return_mean": self.return_mean,
            "saved_unix": time.time(),
        }


def _online(net: Any) -> dict[str, Any]:
    return {f"online.{k}": v for k, v in net.state_dict().items()}


def run_evaluator(
    make_network: Callable[[Any, EnvSpec], Any],
    config: Any,
    run_dir: str | Path,
    seed: int,
    params: ParamSource,
    link: StatusLink,
) -> None:
    """Evaluate every ``eval.interval_s`` on a new parameter version; final on command.

    The best-evaluated parameters are kept (``checkpoints/best`` in ``run_dir``, a policy that
    ``rlfleet record --checkpoint RUN`` and friends load by default): what a run that stops on
    solving reached. The final evaluation plays the last parameters and, when they differ, the
    best ones too (``best`` in the ``final_eval`` report).

    ``make_network(config, env)`` is the agent's network builder (``spec.make_network``)."""
    env_kwargs = config.env.kwargs or None
    env = probe_env(config.env.id, env_kwargs, seed)
    net = make_network(config, env)
    net.eval()
    policy = eval_policy(config, env, net, seed)  # the agent's greedy action (spec hook)
    randomize = config.eval.ranges(config.env)  # domain randomization of the episodes
    is_image = len(env.obs_shape) == 3
    flat = np.empty(param_count(net), np.float32)
    version, evaluated_version, last_eval = 0, 0, -float("inf")
    best = Best()
    ec = config.eval
    round_ = 0
    while True:
        command = link.poll_command(0.05)
        if command == CMD_STOP:
            return
        got = params.fetch_if_newer(version, flat)
        if got is not None:
            version = got
            load_flat(net, flat)
        if command == CMD_FINAL_EVAL:
            record = ec.video and is_image
            start = time.monotonic()

            def final(seed_offset: int, video: bool = False) -> tuple[Any, Any, Any]:
                return evaluate(
                    policy,
                    config.env.id,
                    ec.final_episodes,
                    seed + seed_offset,
                    ec.epsilon,
                    ec.max_episode_steps,
                    video,
                    env_kwargs=env_kwargs,
                    reset_state=policy.reset,
                    randomize=randomize,
                )

            returns, lengths, frames = final(10_000, record)
            video = str(save_gif(frames, Path(run_dir) / "final_eval.gif")) if record else None
            best_final = None
            if best.version and best.version != version:  # what the run reached, evaluated too
                load_flat(net, best.flat)
                best_returns, best_lengths, _ = final(10_000)
                best_final = {
                    "version": best.version,
                    "periodic_return_mean": best.return_mean,
                    "returns": best_returns.tolist(),
                    "lengths": best_lengths.tolist(),
                }
            link.send(
                "final_eval",
                version=version,
                returns=returns.tolist(),
                lengths=lengths.tolist(),
                seconds=time.monotonic() - start,
                video=video,
                best=best_final,
            )
            return
        if version > evaluated_version and time.monotonic() - last_eval >= ec.interval_s:
            last_eval = time.monotonic()
            returns, lengths, _ = evaluate(
                policy,
                config.env.id,
                ec.episodes,
                seed + round_,
                ec.epsilon,
                ec.max_episode_steps,
                env_kwargs=env_kwargs,
                reset_state=policy.reset,
                randomize=randomize,
            )
            round_ += 1
            evaluated_version = version
            if best.improved_by(version, float(np.mean(returns)), flat):
                save_policy(run_dir, _online(net), best.state(config))
            link.send(
                "eval",
                version=version,
                return_mean=float(np.mean(returns)),
                return_std=float(np.std(returns)),
                length_mean=float(np.mean(lengths)),
                seconds=time.monotonic() - last_eval,
            )
