"""The ``service=`` of an Ape-X-family agent spec: the shared replay service
(:mod:`rlfleet.agents.common.replay_service`) run as the ``replay`` role (``rlfleet replay``),
on the family's message kinds, with the agent's own service and remote store factories. Cheap to
import (a spec module imports it): the factories are imported when first called."""

from __future__ import annotations

from rlfleet.agents.common.service_messages import BATCH_KIND, DEMAND_KIND, PRIORITIES_KIND
from rlfleet.agents.spec import ServiceSpec, lazy

__all__ = ["replay_service_spec"]


def replay_service_spec(make_service: str, make_remote_store: str) -> ServiceSpec:
    """A replay service whose service and learner-side store are ``"package.module:name"``
    factories: ``make_service(config, env, seed, ends, service_id)`` (the shared
    :class:`~rlfleet.agents.common.replay_service.ReplayService` over the agent's store) and
    ``make_remote_store(config, env, batches, priorities)`` (the shared
    :class:`~rlfleet.agents.common.remote_store.RemoteStore` checking the agent's fields)."""
    return ServiceSpec(
        role="replay",
        batch_kind=BATCH_KIND,
        update_kinds=(PRIORITIES_KIND, DEMAND_KIND),
        make_service=lazy(make_service),
        make_remote_store=lazy(make_remote_store),
        check=lazy("rlfleet.agents.common.replay_service:check_service_config"),
        describe=lazy("rlfleet.agents.common.replay_service:describe"),
    )
