"""The Ape-X learner's store when a replay service samples (``transport.replay_service``): the
Ape-X family's :class:`rlfleet.agents.common.remote_store.RemoteStore`, checking batches
against Ape-X's transition fields (:func:`~rlfleet.agents.apex.messages.message_schema`)."""

from __future__ import annotations

from functools import partial

from rlfleet.agents.apex.messages import message_schema
from rlfleet.agents.common import remote_store

__all__ = ["RemoteStore"]

#: ``RemoteStore(config, env, batches, priorities, *, wait_s=600.0)``.
RemoteStore = partial(remote_store.RemoteStore, schema=message_schema)
