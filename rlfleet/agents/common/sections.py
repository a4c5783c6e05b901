"""The config sections every agent shares: ``run`` (budgets, seeds, checkpoints), ``env``,
``eval`` (the evaluator and the solve criterion) and ``transport`` (the data plane), and the
checks every agent's config makes the same way (:func:`fill_sections`, :func:`check_algorithm`,
:func:`check_choice`, :func:`check_layers`).

The fleet reads these the same way for every algorithm; each agent's config class adds its own
sections (model, algo, actor, learner, ...) next to them.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rlfleet.agents import registry
from rlfleet.config import field
from rlfleet.errors import ConfigError, EnvError

TRANSPORT_KINDS = ("local", "redis")


#: The policy-head fields of an actor-critic model section (IMPALA, PPO): default, doc, range.
HEAD_FIELDS: dict[str, tuple[Any, str, dict[str, float]]] = {
    "squash": (
        "tanh",
        "Box actions: how the Gaussian's sample reaches the bounds: tanh (squashed, with the "
        "Jacobian in the log-probability) or clip (log-probability of the unclipped sample).",
        {},
    ),
    "log_std_init": (0.0, "Box actions: initial log standard deviation.", {"ge": -20, "le": 2}),
    "state_dependent_std": (
        False,
        "Box actions: the log-std is a layer of the features (else one learned vector).",
        {},
    ),
    "critic_inputs": (
        0,
        "The last N observation entries are critic-only: the value function sees them, the "
        "policy never does (privileged features such as netsim's privileged = true; "
        "evaluation runs without them).",
        {"ge": 0},
    ),
}


def head_field(name: str) -> Any:
    """The config field ``name`` of :data:`HEAD_FIELDS`, for a model section's declaration
    (``squash: str = head_field("squash")``): every agent with policy heads documents and
    bounds them alike (:func:`rlfleet.agents.common.heads.policy_head` reads them)."""
    default, doc, bounds = HEAD_FIELDS[name]
    return field(default, doc, **bounds)


def check_choice(key: str, value: Any, valid: Sequence[str]) -> None:
    """``value`` of the config key ``key`` (``section.name``) is one of ``valid``; else a
    ConfigError naming the value and the valid ones."""
    if value not in valid:
        raise ConfigError(f"{key} {value!r} is unknown; valid: {', '.join(valid)}")


def check_layers(key: str, sizes: Sequence[int]) -> None:
    """A list of hidden-layer sizes (``key``, e.g. ``model.hidden``) that has at least one."""
    if not sizes:
        raise ConfigError(f"{key} must list at least one layer size, got []")


def fill_sections(config: Any, **makers: Callable[[], Any]) -> None:
    """Give each section of ``config`` (a dataclass of sections) left at None its default:
    ``makers[name]()`` where given (e.g. a ``run`` section naming the agent's algorithm), else
    its annotated section class with its own defaults. Every agent's ``__post_init__``."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        if getattr(config, f.name) is None:
            setattr(config, f.name, makers.get(f.name, hints[f.name])())


def run_section(algorithm: str, **values: Any) -> Callable[[], RunSection]:
    """The default ``run`` section of an agent's config: ``run.algorithm`` names the agent."""
    return lambda: RunSection(algorithm=algorithm, **values)


def check_algorithm(config: Any, algorithm: str, what: str) -> None:
    """``config.run.algorithm`` is ``algorithm``: an agent's config class refuses a run section
    naming another agent (``what``: e.g. ``"an IMPALA config"``)."""
    if config.run.algorithm != algorithm:
        raise ConfigError(
            f"{what} needs run.algorithm = {algorithm!r}, got {config.run.algorithm!r}"
        )


def check_randomize(env_id: str, table: dict[str, Any], section: str) -> None:
    """A ``randomize`` table that ``env_id`` can use (ConfigError / EnvError naming the key)."""
    if not table:
        return
    from rlfleet.envs.randomize import parse_randomization

    try:
        parse_randomization(env_id, table)
    except ConfigError as exc:  # "randomize.<name>: ..." -> "env.randomize.<name>: ..."
        raise ConfigError(f"{section}.{exc}") from exc
    except EnvError as exc:
        raise ConfigError(f"{section}.randomize: {exc}") from exc


@dataclass
class RunSection:
    algorithm: str = field(
        registry.DEFAULT_ALGORITHM, f"Algorithm to train. Valid: {', '.join(registry.names())}."
    )
    seed: int = field(0, "Master seed; every role derives its own from it.", ge=0)
    total_env_steps: int = field(
        1_000_000, "Stop after this many environment steps (0 = no limit).", ge=0
    )
    max_seconds: float = field(0.0, "Stop after this much wall-clock time (0 = no limit).", ge=0)
    stop_on_solve: bool = field(False, "Stop as soon as the solve criterion of [eval] is met.")
    checkpoint_interval_s: float = field(
        300.0, "Seconds between periodic checkpoints (0 = only at the end).", ge=0
    )
    keep_checkpoints: int = field(2, "How many checkpoints to keep in the run folder.", ge=1)
    snapshot_replay: bool = field(False, "Include a replay snapshot in checkpoints (exact resume).")
    log_interval_s: float = field(
        1.0, "Seconds between metric rows in metrics.csv / TensorBoard.", gt=0
    )

    def validate(self) -> None:
        registry.check_name(self.algorithm)


@dataclass
class EnvSection:
    id: str = field(
        "CartPole-v1",
        "Gymnasium id, MinAtar id (MinAtar/Breakout-v1), ALE/<Game>-v5, 'module:EnvId' (the "
        "module is imported and registers EnvId), or the name of env.entry_point's environment.",
    )
    entry_point: str = field(
        "",
        "Your own environment: 'pkg.module:ClassOrFactory' (a gymnasium.Env class or a function "
        "returning one, called with env.kwargs), registered as env.id (e.g. 'MyEnv-v0').",
    )
    envs_per_actor: int = field(8, "Environments each actor steps as one batch (K).", ge=1)
    max_episode_steps: int = field(0, "Time limit override (0 = the environment's own).", ge=0)
    kwargs: dict[str, Any] = field(
        {}, 'Keyword arguments for the environment, e.g. {scenario = "random_traces_0_5"}.'
    )
    normalize_obs: bool = field(
        False,
        "Normalise observations by their running mean and std (kept by the learner, published "
        "with the parameters, saved in checkpoints).",
    )
    randomize: dict[str, Any] = field(
        {},
        "Domain randomization: physical parameters drawn per episode, e.g. {length = [0.4, "
        '0.6], masspole = [0.05, 0.2, "log"]} (uniform, log-uniform, or a fixed number). '
        "CartPole: length, masspole, masscart, force_mag, gravity; Pendulum-v1: mass, length, "
        "gravity.",
    )

    def validate(self) -> None:
        if self.entry_point:
            # registered (not imported) wherever the config is built: the launcher, every role,
            # hosts that join over Redis; the module is imported when an environment is made
            from rlfleet.envs.custom import register_entry_point

            try:
                register_entry_point(self.id, self.entry_point)
            except EnvError as exc:
                raise ConfigError(str(exc)) from exc
        check_randomize(self.id, self.randomize, "env")


@dataclass
class EvalSection:
    episodes: int = field(20, "Greedy episodes per evaluation.", ge=1)
    interval_s: float = field(
        10.0, "Seconds between evaluations (at least one new parameter version apart).", gt=0
    )
    epsilon: float = field(0.0, "Exploration during evaluation (0 = greedy).", ge=0, le=1)
    solve_threshold: float = field(
        0.0, "Mean return that counts as solved (0 = no solve criterion)."
    )
    solve_consecutive: int = field(
        2, "Consecutive evaluations at or above the threshold to call it solved.", ge=1
    )
    final_episodes: int = field(20, "Greedy episodes of the final evaluation.", ge=1)
    max_episode_steps: int = field(
        0, "Step cap per evaluation episode (0 = the environment's own).", ge=0
    )
    video: bool = field(False, "Save an animated GIF of one final-evaluation episode (image envs).")
    randomize: dict[str, Any] = field(
        {},
        "Domain randomization of evaluation episodes, like env.randomize (e.g. ranges outside "
        "the training ones, to test transfer); empty = env.randomize.",
    )

    def ranges(self, env: EnvSection) -> dict[str, Any]:
        """The randomization evaluation episodes use (None: none)."""
        return dict(self.randomize or env.randomize) or None


@dataclass
class TransportSection:
    """How the data plane travels. The Redis URL is deliberately *not* a config key: it may
    carry a password, and this section is written to the run folder (``config.toml``)."""

    kind: str = field(
        "local",
        "Data plane: local (shared memory and Unix sockets on this host) or redis "
        "(experience, parameters and heartbeats through the server given by --redis URL).",
    )
    run: str = field(
        "",
        "Redis run name; every key lives under rlfleet:{run}: (empty = the run folder's name).",
    )
    max_queue: int = field(
        128, "Redis: experience messages the server holds at most (backpressure beyond it).", ge=1
    )
    max_backlog: int = field(
        32,
        "Redis: messages an actor keeps locally while the server is away (oldest dropped).",
        ge=1,
    )
    block_timeout_s: float = field(
        10.0,
        "Redis: seconds an actor waits for room in a full queue before dropping its oldest.",
        gt=0,
    )
    keep_keys: bool = field(False, "Redis: keep the run's keys when the run ends.")
    replay_service: bool = field(
        False,
        "Redis, Ape-X family (Ape-X DQN, DQfD, Ape-X DPG): a replay service (`rlfleet replay`, "
        "or a local role under `rlfleet train`) keeps the prioritized store next to Redis and "
        "sends the learner only sampled batches; priorities go back through Redis.",
    )
    replay_batches: int = field(
        4, "Replay service: sampled batches kept ready in Redis for the learner.", ge=1
    )
    learner_grace_s: float = field(
        30.0,
        "Redis: seconds without a live learner after which actor processes on other hosts end "
        "by themselves (a learner host that crashed never sets the stop flag).",
        gt=0,
    )

    def validate(self) -> None:
        check_choice("transport.kind", self.kind, TRANSPORT_KINDS)
        if self.replay_service and self.kind != "redis":
            raise ConfigError(
                "transport.replay_service = true needs transport.kind = 'redis' (pass --redis "
                "URL): the learner reaches the replay service through Redis"
            )
