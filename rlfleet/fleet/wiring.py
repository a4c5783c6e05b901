"""Which transport carries a role's data plane: one factory per role, so role code never branches
on the transport and the fleet never branches on the algorithm (the spec says what messages the
learner takes and what they look like).

* ``local``: experience over authenticated Unix sockets, parameters in one shared-memory block.
* ``redis``: experience on the run's bounded list, parameters under the run's versioned keys,
  actors keep a heartbeat; with a service at the memory node (``transport.replay_service``), the
  learner's batches come from the service's list and its updates go back on another.

Status and commands stay on the launcher's local sockets for roles it started; roles on other
hosts report through Redis (:func:`status_link`). Redis is an optional extra, imported only
when a fleet asks for it.
"""

from __future__ import annotations

import time
from typing import Any

from rlfleet.envs.spec import EnvSpec
from rlfleet.fleet.addresses import FleetAddresses
from rlfleet.transport.ports import RoleEnds, ServiceEnds, StatusLink

#: Priority-update messages the server holds at most (the oldest are trimmed beyond it).
MAX_UPDATES = 256


def _redis(addresses: FleetAddresses) -> Any:
    from rlfleet.transport.redis import connect
    from rlfleet.transport.redis.roles import CONNECT_WAIT_S

    return connect(addresses.redis_url, wait=CONNECT_WAIT_S)


def status_link(
    addresses: FleetAddresses,
    role: str,
    index: int | str = 0,
    learner_grace_s: float | None = None,
) -> StatusLink:
    """A role's status link: the launcher's socket (which breaks when the launcher dies), or
    (no launcher on this host) Redis: then, with ``learner_grace_s``, the link also says "stop"
    once the run has had no live learner that long (:class:`~rlfleet.fleet.liveness.
    WatchedLink`), so the role ends with a crashed learner host even without its supervisor."""
    if addresses.status:
        from rlfleet.transport.local import RoleLink

        return RoleLink.dial(addresses.status, addresses.authkey, role, index)
    from rlfleet.transport.redis.roles import RedisStatusLink

    client = _redis(addresses)
    link: StatusLink = RedisStatusLink(client, addresses.run, str(index), role=role)
    if learner_grace_s is None:
        return link
    from rlfleet.fleet.liveness import LearnerWatch, WatchedLink

    watch = LearnerWatch.over_redis(client, addresses.run, learner_grace_s, stop_flag=False)
    return WatchedLink(link, watch)


def actor_ends(
    config: Any, addresses: FleetAddresses, link: StatusLink, member: str | int
) -> RoleEnds:
    """An actor's outbox (``push``) and parameter source (``fetch_if_newer``); ``member`` is
    its id in the run (the local index, or a remote actor's run-wide id)."""
    if addresses.over_redis:
        from rlfleet.transport.redis.roles import ActorEnd

        tc = config.transport
        end = ActorEnd(
            _redis(addresses),
            addresses.run,
            member,
            max_queue=tc.max_queue,
            max_backlog=tc.max_backlog,
            block_timeout=tc.block_timeout_s,
        )
        return RoleEnds(params=end, outbox=end, closers=[end.close])
    from rlfleet.transport.local import LazyParams, PipeOutbox, connect

    outbox = PipeOutbox(connect(addresses.experience, addresses.authkey))
    return RoleEnds(
        params=LazyParams(addresses.params_name, link), outbox=outbox, closers=[outbox.close]
    )


def evaluator_ends(addresses: FleetAddresses, link: StatusLink) -> RoleEnds:
    """The evaluator's parameter source."""
    if addresses.over_redis:
        from rlfleet.transport.redis import RedisParams
        from rlfleet.transport.redis.roles import default_backoff

        return RoleEnds(
            params=RedisParams(_redis(addresses), addresses.run, backoff=default_backoff())
        )
    from rlfleet.transport.local import LazyParams

    return RoleEnds(params=LazyParams(addresses.params_name, link))


def learner_ends(config: Any, spec: Any, addresses: FleetAddresses, env: EnvSpec) -> RoleEnds:
    """The learner's inbox (or a service's ``store``) and its parameter sink (``publish``)."""
    schema, check = spec.schema(config, env), spec.content_check(config, env)
    if addresses.over_redis:
        from rlfleet.transport.redis import RedisInbox, RedisParams
        from rlfleet.transport.redis.roles import default_backoff

        client = _redis(addresses)
        params = RedisParams(
            client, addresses.run, backoff=default_backoff(), owner=addresses.claim_token
        )
        if config.transport.replay_service:  # batches from the service instead of experience
            from rlfleet.transport.redis.replay import PriorityOutbox, samples_key

            service = spec.service
            batches = RedisInbox(
                client,
                addresses.run,
                kinds=(service.batch_kind,),
                backoff=default_backoff(),
                key=samples_key(addresses.run),
            )
            updates = PriorityOutbox(client, addresses.run, MAX_UPDATES, backoff=default_backoff())
            store = service.make_remote_store(config, env, batches, updates)
            return RoleEnds(params=params, store=store)
        inbox = RedisInbox(
            client,
            addresses.run,
            kinds=(spec.message_kind,),
            expect=schema,
            check=check,
            backoff=default_backoff(),
        )
        return RoleEnds(params=params, inbox=inbox)
    from rlfleet.transport.local import AcceptLoop, CreatingParams, PipeInbox

    inbox = PipeInbox(kinds={spec.message_kind}, expect=schema, check=check)
    accept = AcceptLoop(addresses.experience, addresses.authkey, inbox.add)
    sink = CreatingParams(addresses.params_name)
    return RoleEnds(params=sink, inbox=inbox, closers=[sink.close, accept.close])


def service_ends(
    config: Any, spec: Any, client: Any, run: str, member: str, env: EnvSpec, claim_ttl: float
) -> tuple[ServiceEnds, Any]:
    """A service's Redis ends (actors' experience in, the learner's updates in, batches out, its
    membership), and its exclusive claim on the run (``claim.acquire()`` before serving)."""
    from rlfleet.transport.redis import Heartbeat, RedisInbox
    from rlfleet.transport.redis.replay import BatchOutbox, ServiceClaim, priorities_key
    from rlfleet.transport.redis.roles import default_backoff

    experience = RedisInbox(
        client,
        run,
        kinds=(spec.message_kind,),
        expect=spec.schema(config, env),
        check=spec.content_check(config, env),
        backoff=default_backoff(),
    )
    updates = RedisInbox(
        client,
        run,
        kinds=spec.service.update_kinds,
        backoff=default_backoff(),
        key=priorities_key(run),
    )
    batches = BatchOutbox(client, run, config.transport.replay_batches, backoff=default_backoff())
    claim = ServiceClaim(client, run, member, ttl=claim_ttl, backoff=default_backoff())
    heartbeat = Heartbeat(client, run, member, group="replay")
    refreshed = [float("-inf")]

    def keepalive() -> bool | None:
        heartbeat.beat()  # rate-limited inside
        now = time.monotonic()
        if now - refreshed[0] < claim_ttl / 4:
            return True
        refreshed[0] = now
        return claim.refresh()

    def release() -> None:
        claim.release()
        heartbeat.leave()

    return ServiceEnds(experience, updates, batches, keepalive=keepalive, release=release), claim
