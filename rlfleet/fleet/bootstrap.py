"""Per-process bootstrap of a fleet's roles: decode the config, pick the agent's spec, set the
thread count, dial the status link, open the transport ends, run the shared role shell, and
report an uncaught error before dying.

The role mains take plain strings and numbers, so they start the same way in a forkserver child
(the launcher's processes), in a thread (the in-process launcher), or under another process
manager. This module imports nothing heavy at import time: the launcher references the mains
without importing torch, and the forkserver preloads :data:`PRELOAD` plus every agent's own
modules once, so each role starts in milliseconds rather than paying the torch import again.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from rlfleet.agents import registry
from rlfleet.agents.spec import ActorSlot
from rlfleet.fleet.addresses import FleetAddresses
from rlfleet.fleet.wiring import (
    actor_ends,
    evaluator_ends,
    learner_ends,
    status_link,
)
from rlfleet.transport.ports import CMD_STOP, StatusLink

#: Modules every role needs; the forkserver imports them (and the agents' ``preload``) once.
PRELOAD = (
    "torch",
    "rlfleet.agents.common.actor",
    "rlfleet.agents.common.learner",
    "rlfleet.agents.common.evaluator",
)


def preload_modules() -> list[str]:
    """What the fleet's forkserver imports up front: the shells and every agent's modules."""
    modules = [__name__, *PRELOAD]
    for name in registry.names():
        modules.extend(registry.spec(name).preload)
    return modules


def in_own_process() -> bool:
    """True in a role's own process; False for a role running as a thread of the launcher."""
    return threading.current_thread() is threading.main_thread()


def set_threads(n: int) -> None:
    """Pin this process's torch/BLAS intra-op threads (each role process decides its own; roles
    running as threads leave the launcher's setting alone)."""
    if not in_own_process():
        return
    import torch

    torch.set_num_threads(n)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(n)


def load_config(config_json: str) -> tuple[Any, Any]:
    """The run's config and its agent spec."""
    config = registry.config_from_dict(json.loads(config_json))
    return config, registry.spec_of(config)


def guard(link: StatusLink, body: Callable[[], None]) -> None:
    """Run a role body; report an uncaught error to the supervisor before dying."""
    if in_own_process():
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the launcher's to handle
    try:
        body()
    except Exception as exc:
        try:
            link.send("error", message=f"{type(exc).__name__}: {exc}", trace=traceback.format_exc())
        except Exception:
            pass
        raise


def actor_main(
    config_json: str,
    addresses: FleetAddresses,
    index: int,
    num_actors: int,
    seed: int,
    member: str = "",
) -> None:
    """One actor: explorer ``index`` of ``num_actors``; ``member`` is its run-wide id when it
    joined from another host (default: the index)."""
    from rlfleet.agents.common.actor import run_actor

    config, spec = load_config(config_json)
    set_threads(config.actor.torch_threads)
    slot = ActorSlot(index, num_actors, member or index)
    link = status_link(addresses, "actor", slot.member, config.transport.learner_grace_s)

    def body() -> None:  # inside the guard: a transport that fails to open is reported too
        ends = actor_ends(config, addresses, link, slot.member)
        try:
            run_actor(spec.make_acting, config, slot, seed, ends.outbox, ends.params, link)
        finally:
            ends.close()

    guard(link, body)


def learner_main(
    config_json: str,
    addresses: FleetAddresses,
    run_dir: str,
    seed: int,
    resume_from: str,
    wall_origin: float = 0.0,
) -> None:
    """The learner: the agent's core in the shared shell. ``wall_origin``: the Unix time at
    which the run's clock (metrics.csv's ``wall_s``) reads 0, so checkpoints record
    ``elapsed_s`` on that clock (0: the learner's own clock)."""
    from rlfleet.agents.common.learner import LearnerShell
    from rlfleet.envs.spec import probe_env

    config, spec = load_config(config_json)
    set_threads(config.learner.torch_threads)
    link = status_link(addresses, "learner")

    def body() -> None:
        env = probe_env(config.env.id, config.env.kwargs, seed)
        spec.check(config, env)
        ends = learner_ends(config, spec, addresses, env)
        try:
            core = spec.make_learner(config, env, seed, ends)
            clock = (lambda: time.time() - wall_origin) if wall_origin else None
            shell = LearnerShell(core, config, run_dir, ends.params, link, ends.inbox, clock)
            shell.serve(resume_from or None)
        finally:
            ends.close()

    guard(link, body)


def evaluator_main(config_json: str, addresses: FleetAddresses, run_dir: str, seed: int) -> None:
    """The evaluator: greedy episodes on the latest parameters."""
    from rlfleet.agents.common.evaluator import run_evaluator

    config, spec = load_config(config_json)
    set_threads(1)
    link = status_link(addresses, "evaluator")

    def body() -> None:
        ends = evaluator_ends(addresses, link)
        try:
            run_evaluator(spec.make_network, config, run_dir, seed, ends.params, link)
        finally:
            ends.close()

    guard(link, body)


def service_main(config_json: str, addresses: FleetAddresses, seed: int) -> None:
    """The agent's service at the memory node (a replay service) as a local role: status and
    the stop command on the launcher's link, data through Redis."""
    from rlfleet.fleet.services import serve_service
    from rlfleet.transport.redis import connect

    config, spec = load_config(config_json)
    set_threads(1)
    link = status_link(addresses, "service")

    def stop_check(wait_s: float) -> str | None:
        return "stopped" if link.poll_command(wait_s) == CMD_STOP else None

    def body() -> None:
        client = connect(addresses.redis_url, wait=30.0)
        try:
            stats = serve_service(config, spec, client, addresses.run, seed, stop_check)
            link.send("service_stopped", **stats)
        finally:
            client.close()

    guard(link, body)


#: The entry point of each role kind.
ROLE_MAINS: dict[str, Callable[..., None]] = {
    "actor": actor_main,
    "learner": learner_main,
    "evaluator": evaluator_main,
    "service": service_main,
}
