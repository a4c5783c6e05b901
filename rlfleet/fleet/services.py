"""A service at the memory node (an agent's ``spec.service``, e.g. Ape-X's replay service), run
over Redis: claim the run exclusively (a second instance waits as a standby and takes over when
the claim lapses), build the service from the agent's spec, serve until told to stop.

Used by the local ``replay`` role under ``rlfleet train`` and by ``rlfleet replay`` on a host of
its own (:mod:`rlfleet.fleet.hosts.replay`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from rlfleet.envs.spec import probe_env
from rlfleet.fleet.wiring import service_ends

#: Seconds the claim on a run lasts without a refresh (a crashed service's standby waits this).
CLAIM_TTL_S = 6.0


def wait_for_claim(claim: Any, stop_check: Callable[[float], str | None]) -> str:
    """Block until this instance holds the run's claim ("") or ``stop_check`` names a reason."""
    while True:
        if claim.acquire():
            return ""
        reason = stop_check(0.5)  # another instance serves the run: standby
        if reason:
            return reason


def serve_service(
    config: Any,
    spec: Any,
    client: Any,
    run: str,
    seed: int,
    stop_check: Callable[[float], str | None],
    report: Callable[[dict[str, Any]], None] | None = None,
    on_standby: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Claim the run, build the service and serve until ``stop_check`` names a reason; returns
    the service's final stats with ``stop_reason``."""
    spec.service.check(config)
    member = f"{spec.service.role}-{secrets.token_hex(4)}"
    env = probe_env(config.env.id, config.env.kwargs, seed)
    spec.check(config, env)
    ends, claim = service_ends(config, spec, client, run, member, env, CLAIM_TTL_S)
    if on_standby is not None and claim.acquire() is False:
        on_standby(claim.holder() or "?")
    reason = wait_for_claim(claim, stop_check)
    if reason:
        return {"stop_reason": reason, "batches": 0}
    try:
        service = spec.service.make_service(config, env, seed, ends, member)
    except BaseException:
        ends.release()
        raise
    reason = service.serve(stop_check, report)
    return {**service.stats(), "stop_reason": reason}
