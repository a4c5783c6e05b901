"""The actor loop every agent shares: K environments as one batch, the agent's acting step,
parameters from the learner, status reports, and stop.

The agent supplies an :class:`Acting` (``spec.make_acting``): how to choose actions, what to
stage from each step, and when a message is ready. This loop owns everything else, the same for
every algorithm: waiting for the learner's first parameters (actors act with the learner's
weights, never their own random ones), the parameter-fetch cadence the acting step asks for,
pushing messages (timed), waiting without stepping while the acting step waits for newer
parameters, episode statistics, reporting every ``REPORT_INTERVAL_S`` and stopping on the
supervisor's command.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import numpy as np

from rlfleet.agents.spec import ActorSlot
from rlfleet.envs import make_vector_env
from rlfleet.envs.spec import EnvSpec
from rlfleet.envs.vector import StepResult
from rlfleet.errors import TransportError
from rlfleet.transport.ports import CMD_STOP, Outbox, ParamSource, StatusLink

#: Seconds between an actor's status reports.
REPORT_INTERVAL_S = 0.5


class Acting(Protocol):
    """One agent's acting step over a batch of K environments."""

    #: Length of the flat parameter vector the learner publishes.
    param_count: int

    def load_params(self, flat: np.ndarray, version: int) -> None:
        """Act with these parameters (``version`` travels with every message from now on)."""

    def begin(self, obs: np.ndarray) -> None:
        """The first observations of all K environments."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Actions for the K current observations."""

    def observe(self, step: StepResult) -> list[bytes]:
        """Stage what the last step produced; return the messages ready to push (often none)."""

    def wants_params(self) -> bool:
        """Whether now is the time to check for newer parameters."""

    def waiting(self) -> bool:
        """True while the step has done what it can with its parameters and waits for newer
        ones (a synchronous algorithm's iteration is complete): the loop then steps nothing."""


def first_params(params: ParamSource, flat: np.ndarray, link: StatusLink) -> int | None:
    """Wait for the learner's first publication; None if told to stop first. Waits on the link
    with a timeout, never spins."""
    while True:
        got = params.fetch_if_newer(0, flat)
        if got is not None:
            return got
        if link.poll_command(0.05) == CMD_STOP:
            return None


class ActorStats:
    """What an actor reports: cumulative env steps, and episodes and push timings since the
    last report."""

    def __init__(self, version: int = 0) -> None:
        self.version = version  # of the parameters acting now
        self.env_steps = 0
        self.counted = 0  # env steps reported: the steps of messages not dropped
        self.first_step_unix: float | None = None  # when this actor stepped its envs first
        self.returns: list[float] = []
        self.lengths: list[int] = []
        self.push_s = 0.0
        self.pushes = 0

    def record(self, step: StepResult) -> None:
        if self.first_step_unix is None:
            self.first_step_unix = time.time()
        self.env_steps += len(step.reward)
        done = step.terminated | step.truncated
        if done.any():
            self.returns.extend(step.episode_returns[done].tolist())
            self.lengths.extend(step.episode_lengths[done].tolist())

    def report(self, link: StatusLink, outbox: Outbox) -> None:
        """Send one ``actor_stats`` report and start the next interval. ``env_steps`` counts
        the steps of every message not dropped: steps an outbox dropped during an outage
        (``dropped_steps``) do not count toward the run's env-step budget. The count never
        goes down (a message dropped after its steps were reported stays counted: at most the
        few messages of one report interval)."""
        dropped_steps = int(getattr(outbox, "dropped_steps", 0))
        self.counted = max(self.counted, self.env_steps - dropped_steps)
        link.send(
            "actor_stats",
            env_steps=self.counted,
            dropped_steps=dropped_steps,
            episode_returns=self.returns,
            episode_lengths=self.lengths,
            policy_version=self.version,
            push_latency_ms=1000.0 * self.push_s / max(self.pushes, 1),
            # outboxes that buffer across outages count what they dropped / hold back;
            # a pipe does neither, so it reports zeros
            dropped=int(getattr(outbox, "dropped", 0)),
            backlog=int(getattr(outbox, "backlog", 0)),
            first_step_unix=self.first_step_unix,
        )
        self.returns, self.lengths = [], []
        self.push_s, self.pushes = 0.0, 0


def run_actor(
    make_acting: Any,
    config: Any,
    slot: ActorSlot,
    seed: int,
    outbox: Outbox,
    params: ParamSource,
    link: StatusLink,
) -> None:
    """Act until the supervisor says stop (or the link drops).

    ``make_acting(config, env, slot, seed)`` is the agent's :class:`Acting` factory."""
    ec = config.env
    venv = make_vector_env(
        ec.id,
        ec.envs_per_actor,
        seed,
        max_episode_steps=ec.max_episode_steps or None,
        env_kwargs=ec.kwargs or None,
        randomize=ec.randomize or None,
    )
    try:
        acting = make_acting(config, EnvSpec.of(venv), slot, seed)
        flat = np.empty(acting.param_count, np.float32)
        version = first_params(params, flat, link)
        if version is None:
            return
        acting.load_params(flat, version)
        _act(acting, venv, flat, version, outbox, params, link)
    finally:
        venv.close()


def _act(
    acting: Acting,
    venv: Any,
    flat: np.ndarray,
    version: int,
    outbox: Outbox,
    params: ParamSource,
    link: StatusLink,
) -> None:
    stats = ActorStats(version)
    try:
        _loop(acting, venv, flat, outbox, params, link, stats)
    finally:
        try:  # the last steps count too (an actor blocked by backpressure reports only here)
            stats.report(link, outbox)
        except Exception:  # noqa: BLE001 - the supervisor may be gone already
            pass


def _loop(
    acting: Acting,
    venv: Any,
    flat: np.ndarray,
    outbox: Outbox,
    params: ParamSource,
    link: StatusLink,
    stats: ActorStats,
) -> None:
    obs = venv.reset()
    acting.begin(obs)
    last_report = time.monotonic()
    while True:
        if acting.waiting():
            got = params.fetch_if_newer(stats.version, flat)
            if got is not None:
                stats.version = got
                acting.load_params(flat, got)
            elif link.poll_command(0.02) == CMD_STOP:  # blocks on the link, no busy wait
                return
            continue
        step = venv.step(acting.act(obs))
        stats.record(step)
        for payload in acting.observe(step):
            start = time.perf_counter()
            try:
                outbox.push(payload)  # blocks while the learner's queue is full (backpressure)
            except TransportError:
                # a push blocked by backpressure cannot see the stop command; the learner
                # stopping next closes the queue: then this is the end, not a failure
                if link.poll_command() == CMD_STOP:
                    return
                raise
            stats.push_s += time.perf_counter() - start
            stats.pushes += 1
        obs = step.obs
        if acting.wants_params():
            got = params.fetch_if_newer(stats.version, flat)
            if got is not None:
                stats.version = got
                acting.load_params(flat, got)
        now = time.monotonic()
        if now - last_report >= REPORT_INTERVAL_S:
            stats.report(link, outbox)
            last_report = now
            if link.poll_command() == CMD_STOP:
                return
