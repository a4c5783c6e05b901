"""Ape-X DPG's replay service: the Ape-X family's service
(:class:`rlfleet.agents.common.replay_service.ReplayService`) over a single prioritized replay
of DPG transitions, whose actions are float32 vectors of the Box, and the learner's side
checking batches against DPG's message schema. The rest (the three threads, the limiter, the
messages, the claim on the run) is the family's."""

from __future__ import annotations

from functools import partial
from typing import Any

from rlfleet.agents.common import remote_store, replay_service
from rlfleet.agents.common.prioritized import build_limiter
from rlfleet.agents.common.replay_service import ServedReplay
from rlfleet.agents.common.replay_store import ReplayStore
from rlfleet.agents.dpg.messages import largest_push, message_schema, replay_fields
from rlfleet.envs.spec import EnvSpec

__all__ = ["RemoteStore", "ReplayService", "served_replay"]


def served_replay(config: Any, env: EnvSpec, seed: int) -> ServedReplay:
    """One replay of DPG transitions and the run's samples-per-insert limiter (the limiter the
    learner would run with a local replay)."""
    fields = replay_fields(env)
    return ServedReplay(
        store=ReplayStore(config.replay, fields, seed),
        fields=tuple(fields),
        limiter=build_limiter(config.replay, config.learner.batch_size, largest_push(config)),
    )


#: ``ReplayService(config, env, seed, ends, service_id=None)``: the shared service over DPG's
#: replay.
ReplayService = partial(replay_service.ReplayService, served=served_replay)
#: ``RemoteStore(config, env, batches, priorities, *, wait_s=600.0)``: the learner's store,
#: expecting DPG's transition fields.
RemoteStore = partial(remote_store.RemoteStore, schema=message_schema)
