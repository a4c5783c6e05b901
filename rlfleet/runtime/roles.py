"""Process entry points of a fleet: wire a transport (:mod:`rlfleet.runtime.wiring`) into the
role loops.

The launcher starts these through a ``forkserver`` that has already imported this module (and
with it torch, numba's cached kernels and gymnasium), so each role starts in milliseconds rather
than paying the ~2.5 s torch import again. Arguments are plain strings and numbers.
"""

from __future__ import annotations

import json
import os
import signal
import traceback
from collections.abc import Callable

import torch

from rlfleet.runtime.actor import run_actor
from rlfleet.runtime.configs import AnyConfig, config_from_dict
from rlfleet.runtime.evaluator import run_evaluator
from rlfleet.runtime.impala_actor_role import run_impala_actor
from rlfleet.runtime.impala_learner import run_impala_learner
from rlfleet.runtime.learner import run_learner
from rlfleet.runtime.links import RoleLink
from rlfleet.runtime.wiring import (
    FleetAddresses,
    RedisStatusLink,
    actor_ends,
    evaluator_ends,
    learner_ends,
)

__all__ = [
    "FleetAddresses",
    "actor_main",
    "evaluator_main",
    "learner_main",
    "remote_actor_main",
    "set_threads",
]


def set_threads(n: int) -> None:
    """Pin this process's torch/BLAS intra-op threads (each role decides its own)."""
    torch.set_num_threads(n)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(n)


def _config(config_json: str) -> AnyConfig:
    return config_from_dict(json.loads(config_json))


#: The actor and learner loops of each run.algorithm (Ape-X's for anything not listed).
ACTOR_LOOPS: dict[str, Callable[..., None]] = {"impala": run_impala_actor}
LEARNER_LOOPS: dict[str, Callable[..., None]] = {"impala": run_impala_learner}


def _actor_loop(config: AnyConfig) -> Callable[..., None]:
    return ACTOR_LOOPS.get(config.run.algorithm, run_actor)


def _learner_loop(config: AnyConfig) -> Callable[..., None]:
    return LEARNER_LOOPS.get(config.run.algorithm, run_learner)


def _guard(link: RoleLink | RedisStatusLink, body: Callable[[], None]) -> None:
    """Run a role body; report an uncaught error to the launcher before dying."""
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
    config_json: str, addresses: FleetAddresses, index: int, num_actors: int, seed: int
) -> None:
    config = _config(config_json)
    set_threads(config.actor.torch_threads)
    link = RoleLink.dial(addresses.status, addresses.authkey, "actor", index)

    def body() -> None:  # inside the guard: a transport that fails to open is reported too
        ends = actor_ends(config, addresses, link, index)
        try:
            run = _actor_loop(config)
            run(config, index, num_actors, seed, ends.outbox, ends.params, link)
        finally:
            ends.close()

    _guard(link, body)


def evaluator_main(config_json: str, addresses: FleetAddresses, run_dir: str, seed: int) -> None:
    config = _config(config_json)
    set_threads(1)
    link = RoleLink.dial(addresses.status, addresses.authkey, "evaluator")

    def body() -> None:
        ends = evaluator_ends(config, addresses, link)
        try:
            run_evaluator(config, run_dir, seed, ends.params, link)
        finally:
            ends.close()

    _guard(link, body)


def learner_main(
    config_json: str, addresses: FleetAddresses, run_dir: str, seed: int, resume_from: str
) -> None:
    config = _config(config_json)
    set_threads(config.learner.torch_threads)
    link = RoleLink.dial(addresses.status, addresses.authkey, "learner")

    def body() -> None:
        ends = learner_ends(config, addresses, seed)
        try:
            run = _learner_loop(config)
            run(config, run_dir, seed, ends.inbox, ends.params, link, resume_from or None)
        finally:
            ends.close()

    _guard(link, body)


def remote_actor_main(
    config_json: str, redis_url: str, run: str, member: str, index: int, num_actors: int, seed: int
) -> None:
    """An actor on a host without the launcher: data plane and status both through Redis."""
    config = _config(config_json)
    set_threads(config.actor.torch_threads)
    addresses = FleetAddresses("", "", "", "", redis_url=redis_url, run=run)

    def body() -> None:
        ends = actor_ends(config, addresses, link, member)
        try:
            run = _actor_loop(config)
            run(config, index, num_actors, seed, ends.outbox, ends.params, link)
        finally:
            ends.close()

    from rlfleet.transport.redis import connect

    link = RedisStatusLink(connect(redis_url, wait=30.0), run, member)
    _guard(link, body)
