"""``rlfleet train PRESET --ray [ADDRESS]``: the run's roles placed as Ray actors.

The driver (this process) is the launcher of a local run -- :class:`RayFleet` is a
:class:`~rlfleet.fleet.launcher.LocalFleet` with another placement -- so the run folder
(config, metrics, status, final evaluation) is written on the driver's host, the stop
conditions, the shutdown order and the learner's death ending the run are the local fleet's.
What changes:

* **placement**: each role is a Ray actor running the role's existing entry point
  (:class:`~rlfleet.fleet.cluster.roles.RoleActor`); the learner and the evaluator (and the
  replay service when configured) get a bundle each in one placement group (the learner's with
  its CPUs and GPUs), the N actors one bundle each in a ``SPREAD`` group, so they go to
  different nodes where there are some; actors, the evaluator and the service are restarted by
  Ray (``max_restarts``; the running role is re-submitted), the learner never is;
* **data plane**: Redis, never Ray -- the ``--redis`` URL, or a redis-server started for the run
  by the learner's Ray actor, so on its node
  (:meth:`~rlfleet.fleet.cluster.roles.RoleActor.start_redis`: the node's address, a generated
  password, stopped at the end). The URL reaches the roles as an argument of their
  Ray call and is never written to config or logs;
* **status links**: the roles dial the driver's status listener over TCP (``tcp://DRIVER:PORT``,
  HMAC-authenticated as the local Unix sockets are, codec bytes only).

On the way out (end of the run, an error, Ctrl-C) every actor of the run is killed, the
placement groups removed, the redis-server stopped, and a cluster started for the run shut down:
nothing of the run stays on the cluster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlfleet.errors import ConfigError, RlfleetError
from rlfleet.fleet.bootstrap import PRELOAD
from rlfleet.fleet.cluster.roles import KIND_OF, RoleActor, encode_args
from rlfleet.fleet.interrupts import InterruptHold
from rlfleet.fleet.launcher import LocalFleet
from rlfleet.fleet.supervisor import Placement

#: Seconds to wait for the cluster to grant the run's placement groups.
RESERVE_TIMEOUT_S = 120.0


def import_ray() -> Any:
    """Ray, or a clear error naming the extra that installs it."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(
            "--ray needs the ray extra: pip install 'rlfleet[ray]' (or pip install "
            "'ray[default]' torch==2.13.0 to keep the CPU torch)"
        ) from exc
    return ray


@dataclass(frozen=True)
class RayResources:
    """What each role asks the cluster for, and Ray's restart policy for the restartable ones."""

    learner_cpus: float = 1.0
    learner_gpus: float = 0.0
    actor_cpus: float = 1.0
    evaluator_cpus: float = 1.0
    service_cpus: float = 1.0
    max_restarts: int = 3

    def __post_init__(self) -> None:
        for name in ("learner_cpus", "actor_cpus", "evaluator_cpus", "service_cpus"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"Ray resources: {name} must be > 0, got {value}")
        if not (math.isfinite(self.learner_gpus) and self.learner_gpus >= 0):
            raise ConfigError(f"Ray resources: learner_gpus must be >= 0, got {self.learner_gpus}")
        if self.max_restarts < 0:
            raise ConfigError(f"Ray resources: max_restarts must be >= 0, got {self.max_restarts}")


class RayRoleHandle:
    """A role running as a Ray actor, with a process's interface. ``is_alive`` is True while
    the role's call runs -- including while Ray restarts a dead actor and re-submits it; once
    the call ends (returned, raised, or Ray gave up restarting) it is dead. ``terminate`` kills
    the actor without a restart."""

    def __init__(self, ray: Any, actor: Any, ref: Any) -> None:
        self._ray, self.actor, self.ref = ray, actor, ref
        self._code: int | None = None

    def _settle(self, timeout: float) -> None:
        if self._code is not None:
            return
        ready, _ = self._ray.wait([self.ref], timeout=timeout)
        if not ready:
            return
        try:
            self._ray.get(self.ref)
            self._code = 0
        except Exception:  # the role raised (it reported why on its link) or its actor died
            self._code = 1

    def is_alive(self) -> bool:
        self._settle(0)
        return self._code is None

    @property
    def exitcode(self) -> int | None:
        self._settle(0)
        return self._code

    def join(self, timeout: float | None = None) -> None:
        self._settle(timeout if timeout is not None else 1e9)

    def terminate(self) -> None:
        try:
            self._ray.kill(self.actor, no_restart=True)
        except Exception:  # already gone
            pass


class RayPlacement:
    """Roles as Ray actors: ``start`` picks the role's resources, bundle and restart policy by
    its kind and calls its entry point in the actor (see :class:`RoleActor`)."""

    name = "ray"

    def __init__(self, ray: Any, core_group: Any, actor_group: Any, res: RayResources) -> None:
        self._ray = ray
        self.core_group, self.actor_group, self.res = core_group, actor_group, res
        self.handles: list[RayRoleHandle] = []
        self._started: dict[str, int] = {}
        self._actor_class = ray.remote(RoleActor)
        self._warm: dict[str, Any] = {}  # role label -> its actor, created ahead of its start

    def _create(self, kind: str, index: int, label: str) -> Any:
        return self._actor_class.options(name=label, **self._options(kind, index)).remote()

    def create_early(self, roles: list[tuple[str, int]]) -> None:
        """Create the actors of ``roles`` (kind, index) now, ahead of their start: a Ray
        worker's start then overlaps with the driver's set-up (the run's redis-server, its
        claim, the status listener); :meth:`start` uses them."""
        for kind, index in roles:
            label = f"{kind}-{index}"
            self._warm[label] = self._create(kind, index, label)

    def early(self, label: str) -> Any:
        """The actor :meth:`create_early` made for the role ``label`` (e.g. ``learner-0``)."""
        return self._warm[label]

    def warm(self, modules: list[str]) -> None:
        """Have every early actor import ``modules`` (an actor's calls run in order: this one
        before the role's ``run``)."""
        for actor in self._warm.values():
            actor.warm.remote(modules)

    def _options(self, kind: str, index: int) -> dict[str, Any]:
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        res = self.res
        if kind == "actor":
            group, bundle, cpus = self.actor_group, index, res.actor_cpus
        else:  # one bundle each in the core group: learner 0, evaluator 1, service 2
            group, bundle = self.core_group, {"learner": 0, "evaluator": 1, "service": 2}[kind]
            cpus = {"learner": res.learner_cpus, "evaluator": res.evaluator_cpus}.get(
                kind, res.service_cpus
            )
        restarts = 0 if kind == "learner" else res.max_restarts
        return {
            "num_cpus": cpus,
            "num_gpus": res.learner_gpus if kind == "learner" else 0,
            "max_restarts": restarts,
            "max_task_retries": -1 if restarts else 0,  # the role's call runs again after one
            "scheduling_strategy": PlacementGroupSchedulingStrategy(
                group, placement_group_bundle_index=bundle
            ),
        }

    def start(self, name: str, target: Any, args: tuple) -> RayRoleHandle:
        kind = KIND_OF[target]
        index = int(name.rsplit("-", 1)[1]) if kind == "actor" else 0
        # named in the run's namespace, so the dashboard (and `ray.get_actor`) show which role
        # is which; a role the supervisor starts anew after Ray gave up gets a fresh name
        base = f"{kind}-{index}"
        self._started[base] = self._started.get(base, -1) + 1
        label = base if not self._started[base] else f"{base}.{self._started[base]}"
        actor = self._warm.pop(label, None) or self._create(kind, index, label)
        handle = RayRoleHandle(self._ray, actor, actor.run.remote(kind, encode_args(args)))
        self.handles.append(handle)
        return handle

    def close(self) -> None:
        """Kill every actor this placement started or warmed (no restarts)."""
        for handle in self.handles:
            handle.terminate()
        for actor in self._warm.values():  # warmed for a role the run never started
            try:
                self._ray.kill(actor, no_restart=True)
            except Exception:  # already gone
                pass
        self._warm.clear()


class RayFleet(LocalFleet):
    """One training run placed on a Ray cluster (see the module's docstring).

    ``address``: ``auto``, ``ray://HOST:PORT``, ``HOST:PORT``, or None for a local cluster
    started for the run (and shut down after it). ``redis_url``: the run's Redis; None starts a
    redis-server on the learner's node. ``status_host``: the driver's address the roles dial
    (default: the address Ray knows this host by).
    """

    def __init__(
        self,
        config: Any,
        run_dir: str | Path,
        *,
        address: str | None = None,
        resources: RayResources | None = None,
        redis_url: str | None = None,
        status_host: str | None = None,
        **kwargs: Any,
    ) -> None:
        if config.transport.kind != "redis":
            raise ConfigError(
                f"--ray runs over Redis; transport.kind is {config.transport.kind!r} (drop "
                "--transport local, or leave it at the default)"
            )
        super().__init__(config, Path(run_dir).resolve(), redis_url=redis_url, **kwargs)
        self.address = address
        self.res = resources or RayResources(learner_cpus=float(config.learner.torch_threads))
        self.status_host = status_host
        self.ray: Any = None
        self.ray_restarts = 0
        self._said_hello: set[tuple[str, int]] = set()
        self._groups: list[Any] = []
        self._redis_node: Any = None
        self._ray_placement: RayPlacement | None = None

    # ---- the cluster around the local launcher ----------------------------------------------
    def run(self) -> Any:
        self.ray = import_ray()
        try:
            self._connect()
            self._reserve()
            self._create_roles_early()
            # the redis-server (on the learner's actor, first in its queue), then every role's
            # imports: they run while the driver sets the run up
            pending_redis = None if self.redis_url else self._start_redis()
            assert self._ray_placement is not None
            self._ray_placement.warm([*PRELOAD, *self.spec.preload])  # as the forkserver does
            if pending_redis is not None:
                self.redis_url = str(self.ray.get(pending_redis, timeout=60.0))
                self.redis_private = True  # generated password: no other host holds the name
            return super().run()
        finally:
            with InterruptHold():  # a Ctrl-C now must not leave half the run on the cluster
                self._release()

    def namespace(self) -> str:
        """The run's Ray namespace (``rlfleet-RUN``): its actors are named ``learner-0``,
        ``evaluator-0``, ``service-0``, ``actor-I`` in it."""
        return f"rlfleet-{self.config.transport.run or self.run_dir.name}"

    def _connect(self) -> None:
        ray = self.ray
        kwargs: dict[str, Any] = {
            "log_to_driver": False,
            "configure_logging": False,
            "namespace": self.namespace(),
        }
        if self.address is None:  # a local cluster for this run only, sized as the local
            # launcher sizes its fleet: num_actors (or one per core beyond the learner's) plus
            # the learner, the evaluator and the service, oversubscribing cores as it does
            res = self.res
            cpus = res.learner_cpus + res.evaluator_cpus + self.num_actors * res.actor_cpus
            cpus += res.service_cpus if self.service_here else 0.0
            kwargs.update(include_dashboard=False, num_cpus=math.ceil(cpus))
        try:
            ray.init(address=self.address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(
                f"cannot connect to the Ray cluster at {self.address!r}: {exc} (valid: auto, "
                "ray://HOST:10001, HOST:6379, or no address for a local cluster)"
            ) from exc

    def _reserve(self) -> None:
        """Size the fleet to the cluster and reserve every role's resources up front, so a
        cluster too small fails now with what it lacks (not with roles pending forever)."""
        from ray.util.placement_group import placement_group

        ray, res = self.ray, self.res
        total = ray.cluster_resources()
        core = [
            {"CPU": res.learner_cpus, **({"GPU": res.learner_gpus} if res.learner_gpus else {})}
        ]
        core.append({"CPU": res.evaluator_cpus})
        if self.service_here:
            core.append({"CPU": res.service_cpus})
        if not self.config.actor.num_actors:  # 0: as many as the cluster's CPUs hold
            spare = float(total.get("CPU", 0)) - sum(b["CPU"] for b in core)
            self.num_actors = max(1, int(spare // res.actor_cpus))
        actors = [{"CPU": res.actor_cpus} for _ in range(self.num_actors)]
        needed = {"CPU": sum(b["CPU"] for b in core + actors), "GPU": res.learner_gpus}
        for key, amount in needed.items():
            if amount > float(total.get(key, 0)):
                raise ConfigError(
                    f"the Ray cluster has {total.get(key, 0):g} {key}s; the run needs "
                    f"{amount:g} (learner {res.learner_cpus:g} CPU, evaluator "
                    f"{res.evaluator_cpus:g}, {self.num_actors} actors x {res.actor_cpus:g}"
                    f"{', service ' + format(res.service_cpus, 'g') if self.service_here else ''}"
                    f"); lower actor.num_actors or add nodes"
                )
        core_group = placement_group(core, strategy="PACK", name="")
        actor_group = placement_group(actors, strategy="SPREAD", name="")
        self._groups = [core_group, actor_group]
        try:
            ray.get([core_group.ready(), actor_group.ready()], timeout=RESERVE_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError as exc:
            raise RlfleetError(
                f"the Ray cluster did not grant the run's resources in {RESERVE_TIMEOUT_S:g} s "
                f"(needs {needed['CPU']:g} CPUs free; available now: "
                f"{ray.available_resources().get('CPU', 0):g})"
            ) from exc
        self._ray_placement = RayPlacement(ray, core_group, actor_group, res)

    def _create_roles_early(self) -> None:
        """Every role's Ray actor, created now (see :meth:`RayPlacement.create_early`)."""
        assert self._ray_placement is not None
        roles = [("learner", 0), ("evaluator", 0)]
        roles += [("service", 0)] if self.service_here else []
        roles += [("actor", i) for i in range(self.num_actors)]
        self._ray_placement.create_early(roles)

    def _learner_node(self) -> str:
        from ray.util.placement_group import placement_group_table

        return str(placement_group_table(self._groups[0])["bundles_to_node_id"][0])

    def _start_redis(self) -> Any:
        """Start the run's redis-server on the learner's actor (so on its node: a generated
        password, that node's address, stopped at the end); returns the Ray reference to its
        URL (ask for it with ``ray.get``)."""
        assert self._ray_placement is not None
        self._redis_node = self._ray_placement.early("learner-0")
        return self._redis_node.start_redis.remote()

    def _release(self) -> None:
        ray = self.ray
        if ray is None or not ray.is_initialized():
            return
        if self._redis_node is not None:  # the learner's actor: its role has ended by now
            try:
                ray.get(self._redis_node.stop_redis.remote(), timeout=20.0)
            except Exception:  # the actor or its worker is gone: its redis-server died with it
                pass
        if self._ray_placement is not None:
            self._ray_placement.close()
        from ray.util.placement_group import remove_placement_group

        for group in self._groups:
            try:
                remove_placement_group(group)
            except Exception:  # never granted, or already removed
                pass
        ray.shutdown()  # a cluster started for the run stops with it

    # ---- the local launcher's hooks ----------------------------------------------------------
    def _placement(self) -> Placement:
        assert self._ray_placement is not None
        return self._ray_placement

    def _status_address(self, tmp: Path) -> str:
        host = self.status_host or self.ray.util.get_node_ip_address()
        return f"tcp://{host}:0"

    def _handle(self, conn: Any, kind: str, meta: dict[str, Any]) -> None:
        # a role that says hello again was restarted by Ray (the supervisor never saw it die)
        if kind == "hello":
            key = (str(meta.get("role")), int(meta.get("index", 0)))
            if key in self._said_hello and key[0] == "actor":
                self.ray_restarts += 1
            self._said_hello.add(key)
        super()._handle(conn, kind, meta)  # a hello after the stop is answered with it there

    def _restarts(self) -> int:
        return super()._restarts() + self.ray_restarts

    def _write_final(self) -> None:
        self.result.actor_restarts = self._restarts()  # a hello during the shutdown counts too
        super()._write_final()
