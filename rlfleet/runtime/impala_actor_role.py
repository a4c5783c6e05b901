"""The IMPALA actor role: K environments as a batch, a softmax policy on a CPU copy of the
policy-value network, and unrolls of T steps pushed as one message each.

Each unroll (see :mod:`rlfleet.algorithms.impala_actor`) carries the behaviour logits and the
``policy_version`` that produced them, so the learner corrects for the lag with V-trace and
reports it. Parameters are checked before every ``actor.param_fetch_interval``-th unroll, so one
unroll is acted by one version. Transport-agnostic like the Ape-X actor: an outbox
(``push(bytes)``), a parameter source (``fetch_if_newer``) and a status link.

With an LSTM core (``model.core = "lstm"``) the actor keeps each environment's core state across
steps and unrolls (new parameters do not reset it), zeroes it after a step that ended the episode,
and sends the state before each unroll's first observation with the unroll.
"""

from __future__ import annotations

import time

import numpy as np

from rlfleet.algorithms.impala_actor import SoftmaxPolicy, UnrollBuilder
from rlfleet.algorithms.params import load_flat, param_count
from rlfleet.envs import check_discrete, make_vector_env
from rlfleet.models import CoreStateHolder, is_recurrent
from rlfleet.runtime.actor import Outbox, ParamSource, StatusLink
from rlfleet.runtime.impala_config import ImpalaConfig
from rlfleet.runtime.links import CMD_STOP
from rlfleet.runtime.policy_nets import build_network
from rlfleet.transport.codec import encode

#: Message kind of an unroll on the wire (the learner accepts nothing else).
UNROLL_KIND = "unroll"
#: Seconds between the actor's status reports.
REPORT_INTERVAL_S = 0.5


def first_params(params: ParamSource, flat: np.ndarray, link: StatusLink) -> int | None:
    """Wait for the learner's first publication (act with its weights, not our own random ones);
    None if told to stop first. Waits on the link with a timeout, never spins."""
    while True:
        got = params.fetch_if_newer(0, flat)
        if got is not None:
            return got
        if link.poll_command(0.05) == CMD_STOP:
            return None


def encode_unroll(unroll: dict[str, np.ndarray], actor_index: int | str) -> bytes:
    """One unroll as a codec message; ``env_steps`` in the metadata is T * K."""
    version = int(unroll["policy_version"])
    arrays = {**unroll, "policy_version": np.array(version, dtype=np.int64)}
    meta = {
        "actor": actor_index,
        "policy_version": version,
        "env_steps": int(unroll["action"].size),
    }
    return encode(UNROLL_KIND, arrays, meta)


def run_impala_actor(
    config: ImpalaConfig,
    actor_index: int,
    num_actors: int,
    seed: int,
    outbox: Outbox,
    params: ParamSource,
    link: StatusLink,
) -> None:
    """Act until the launcher says stop (or the link drops). ``num_actors`` is unused: IMPALA
    actors all sample from the same policy (the signature matches the Ape-X actor's)."""
    del num_actors
    k = config.env.envs_per_actor
    venv = make_vector_env(
        config.env.id,
        k,
        seed,
        max_episode_steps=config.env.max_episode_steps or None,
        env_kwargs=config.env.kwargs or None,
    )
    try:
        check_discrete(venv.action_space, config.env.id, algorithm="IMPALA")
        net = build_network(config, venv.obs_shape, venv.num_actions)
        net.eval()
        flat = np.empty(param_count(net), np.float32)
        version = first_params(params, flat, link)
        if version is None:
            return
        load_flat(net, flat)
        _act(config, actor_index, seed, venv, net, flat, version, outbox, params, link)
    finally:
        venv.close()


def _act(config, actor_index, seed, venv, net, flat, version, outbox, params, link) -> None:
    k, fetch_every = config.env.envs_per_actor, config.actor.param_fetch_interval
    core = CoreStateHolder(net) if is_recurrent(net) else None
    policy = SoftmaxPolicy(core if core is not None else net, seed)
    builder = UnrollBuilder(
        k,
        config.algo.unroll_length,
        venv.obs_shape,
        venv.obs_dtype,
        venv.num_actions,
        config.algo.gamma,
        core_size=net.lstm_size if core is not None else 0,
    )
    builder.start(venv.reset(), core.start(k) if core is not None else None)
    env_steps = unrolls = 0
    returns: list[float] = []
    lengths: list[int] = []
    push_s, pushes = 0.0, 0
    last_report = time.monotonic()
    while True:
        actions, logits = policy.act(builder.current_obs)
        step = venv.step(actions)
        done = step.terminated | step.truncated
        next_core_state = None
        if core is not None:
            core.reset(done)  # the auto-reset observations start new episodes
            # Copied only when it starts the next unroll, i.e. once per T steps.
            next_core_state = core.state
        unroll = builder.add(
            actions,
            logits,
            step.reward,
            step.terminated,
            step.truncated,
            next_obs=step.obs,
            final_obs=step.next_obs,
            policy_version=version,
            next_core_state=next_core_state,
        )
        env_steps += k
        if done.any():
            returns.extend(step.episode_returns[done].tolist())
            lengths.extend(step.episode_lengths[done].tolist())
        if unroll is not None:
            payload = encode_unroll(unroll, actor_index)
            start = time.perf_counter()
            outbox.push(payload)  # blocks while the learner's queue is full (backpressure)
            push_s += time.perf_counter() - start
            pushes += 1
            unrolls += 1
            if unrolls % fetch_every == 0:
                got = params.fetch_if_newer(version, flat)
                if got is not None:
                    version = got
                    load_flat(net, flat)
        now = time.monotonic()
        if now - last_report >= REPORT_INTERVAL_S:
            link.send(
                "actor_stats",
                env_steps=env_steps,
                episode_returns=returns,
                episode_lengths=lengths,
                policy_version=version,
                push_latency_ms=1000.0 * push_s / max(pushes, 1),
                dropped=int(getattr(outbox, "dropped", 0)),
                backlog=int(getattr(outbox, "backlog", 0)),
            )
            returns, lengths = [], []
            push_s, pushes = 0.0, 0
            last_report = now
            if link.poll_command() == CMD_STOP:
                return
