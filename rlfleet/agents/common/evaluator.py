"""The evaluator role: greedy episodes with the latest parameters, periodic and final.

Greedy means the argmax of the run's network scores (:class:`ActionScores`), whatever the agent:
Q-values for Ape-X, policy logits for IMPALA, class scores for DAgger.

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

from rlfleet.agents.common.networks import ActionScores, EpsilonGreedy
from rlfleet.agents.common.video import save_gif
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
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Returns, lengths of ``episodes`` evaluation episodes, and env 0's observations if asked.

    ``policy.act(obs, epsilons)`` picks the actions. ``reset_state`` (for policies with a
    recurrent core, e.g. ``ActionScores.reset``) is called with None before the first step and
    with the mask of ended episodes after each step.
    """
    venv = make_vector_env(env_id, episodes, seed, training=False, env_kwargs=env_kwargs)
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


def run_evaluator(
    make_network: Callable[[Any, EnvSpec], Any],
    config: Any,
    run_dir: str | Path,
    seed: int,
    params: ParamSource,
    link: StatusLink,
) -> None:
    """Evaluate every ``eval.interval_s`` on a new parameter version; final on command.

    ``make_network(config, env)`` is the agent's network builder (``spec.make_network``)."""
    env_kwargs = config.env.kwargs or None
    env = probe_env(config.env.id, env_kwargs, seed)
    net = make_network(config, env)
    net.eval()
    scores = ActionScores(net)
    policy = EpsilonGreedy(scores, env.num_actions, seed)
    is_image = len(env.obs_shape) == 3
    flat = np.empty(param_count(net), np.float32)
    version, evaluated_version, last_eval = 0, 0, -float("inf")
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
            returns, lengths, frames = evaluate(
                policy,
                config.env.id,
                ec.final_episodes,
                seed + 10_000,
                ec.epsilon,
                ec.max_episode_steps,
                record,
                env_kwargs=env_kwargs,
                reset_state=scores.reset,
            )
            video = str(save_gif(frames, Path(run_dir) / "final_eval.gif")) if record else None
            link.send(
                "final_eval",
                version=version,
                returns=returns.tolist(),
                lengths=lengths.tolist(),
                seconds=time.monotonic() - start,
                video=video,
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
                reset_state=scores.reset,
            )
            round_ += 1
            evaluated_version = version
            link.send(
                "eval",
                version=version,
                return_mean=float(np.mean(returns)),
                return_std=float(np.std(returns)),
                length_mean=float(np.mean(lengths)),
                seconds=time.monotonic() - last_eval,
            )
