"""Ape-X's replay service: the Ape-X family's service
(:class:`rlfleet.agents.common.replay_service.ReplayService`) over Ape-X's store.

What is Ape-X's own is what :func:`served_replay` hands the service: the store
:func:`~rlfleet.agents.apex.stores.build_store` builds (so DQfD demonstrations live in the
service too, in the reserved region or as Ape-X DQfD's expert replay), its transition fields
(DQfD's 1-step fields included), the run's limiter, and how an Ape-X DQfD token travels
(:mod:`rlfleet.agents.apex.service_messages`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from rlfleet.agents.apex.learner import build_limiter
from rlfleet.agents.apex.service_messages import apply_priorities, token_arrays
from rlfleet.agents.apex.stores import agent_fields, build_store
from rlfleet.agents.common import replay_service
from rlfleet.agents.common.replay_service import ServedReplay, check_service_config, describe
from rlfleet.envs.spec import EnvSpec

__all__ = ["ReplayService", "check_service_config", "describe", "served_replay"]


def served_replay(config: Any, env: EnvSpec, seed: int) -> ServedReplay:
    """Ape-X's store (demonstrations loaded and checked), fields, limiter and tokens."""
    return ServedReplay(
        store=build_store(config, env, seed),
        fields=tuple(agent_fields(config, env.obs_shape, env.obs_dtype)),
        limiter=build_limiter(config),
        token_arrays=token_arrays,
        apply_priorities=apply_priorities,
    )


#: ``ReplayService(config, env, seed, ends, service_id=None)``: the shared service serving
#: Ape-X's store.
ReplayService = partial(replay_service.ReplayService, served=served_replay)
