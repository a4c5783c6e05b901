"""Process entry points of the local fleet: wire the local transport into the role loops.

The launcher starts these through a ``forkserver`` that has already imported this module (and
with it torch, numba's cached kernels and gymnasium), so each role starts in milliseconds rather
than paying the ~2.5 s torch import again. Arguments are plain strings and numbers.
"""

from __future__ import annotations

import json
import os
import signal
import time
import traceback
from dataclasses import dataclass

import numpy as np
import torch

from rlfleet.config import from_dict
from rlfleet.errors import TransportError
from rlfleet.runtime.actor import run_actor
from rlfleet.runtime.apex_config import ApexConfig
from rlfleet.runtime.evaluator import run_evaluator
from rlfleet.runtime.learner import run_learner
from rlfleet.runtime.links import AcceptLoop, RoleLink, connect
from rlfleet.transport.local import PipeInbox, PipeOutbox, SharedParams


@dataclass(frozen=True)
class FleetAddresses:
    """Where the local roles meet: socket paths, the authkey and the parameter block's name."""

    status: str
    experience: str
    params_name: str
    authkey_hex: str

    @property
    def authkey(self) -> bytes:
        return bytes.fromhex(self.authkey_hex)


def set_threads(n: int) -> None:
    """Pin this process's torch/BLAS intra-op threads (each role decides its own)."""
    torch.set_num_threads(n)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(n)


def _config(config_json: str) -> ApexConfig:
    return from_dict(ApexConfig, json.loads(config_json))


def _attach_params(name: str, size: int, link: RoleLink, timeout: float = 120.0) -> SharedParams:
    """The learner creates the block; wait for it (roles start in any order)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return SharedParams.attach(name, size)
        except TransportError:
            if time.monotonic() > deadline or link.poll_command(0.05) == "stop":
                raise


def _guard(link: RoleLink, body) -> None:
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


class _LazyParams:
    """Attaches to the parameter block on first use (its size is known only after the
    role has built its network)."""

    def __init__(self, name: str, link: RoleLink) -> None:
        self._name, self._link = name, link
        self._params: SharedParams | None = None

    def fetch_if_newer(self, have_version: int, out: np.ndarray) -> int | None:
        if self._params is None:
            self._params = _attach_params(self._name, out.shape[0], self._link)
        return self._params.fetch_if_newer(have_version, out)


def actor_main(
    config_json: str, addresses: FleetAddresses, index: int, num_actors: int, seed: int
) -> None:
    config = _config(config_json)
    set_threads(config.actor.torch_threads)
    link = RoleLink.dial(addresses.status, addresses.authkey, "actor", index)
    outbox = PipeOutbox(connect(addresses.experience, addresses.authkey))
    params = _LazyParams(addresses.params_name, link)
    _guard(link, lambda: run_actor(config, index, num_actors, seed, outbox, params, link))


def evaluator_main(config_json: str, addresses: FleetAddresses, run_dir: str, seed: int) -> None:
    config = _config(config_json)
    set_threads(1)
    link = RoleLink.dial(addresses.status, addresses.authkey, "evaluator")
    params = _LazyParams(addresses.params_name, link)
    _guard(link, lambda: run_evaluator(config, run_dir, seed, params, link))


class _CreatingParams:
    """The learner's side: creates the named block on its first publish."""

    def __init__(self, name_hint: str) -> None:
        self.name_hint = name_hint
        self.block: SharedParams | None = None

    def publish(self, flat: np.ndarray, version: int) -> None:
        if self.block is None:
            self.block = SharedParams.create(flat.shape[0], name=self.name_hint)
        self.block.publish(flat, version)


def learner_main(
    config_json: str, addresses: FleetAddresses, run_dir: str, seed: int, resume_from: str
) -> None:
    config = _config(config_json)
    set_threads(config.learner.torch_threads)
    link = RoleLink.dial(addresses.status, addresses.authkey, "learner")
    inbox = PipeInbox(kinds={"experience"})
    accept = AcceptLoop(addresses.experience, addresses.authkey, inbox.add)
    params = _CreatingParams(addresses.params_name)
    try:
        _guard(
            link,
            lambda: run_learner(config, run_dir, seed, inbox, params, link, resume_from or None),
        )
    finally:
        accept.close()
        if params.block is not None:
            params.block.close()
