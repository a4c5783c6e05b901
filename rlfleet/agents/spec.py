"""The seam between an algorithm and the rest of rlfleet: one :class:`AgentSpec` per agent family.

The fleet (processes, hosts, transports) and the shared shells (actor loop, learner loop,
evaluator, checkpoints) ask a spec for everything algorithm-specific and never name an
algorithm themselves:

* ``config_class`` -- the run's typed config (shared ``run``/``env``/``eval``/``transport``
  sections plus the agent's own);
* ``make_network`` -- the network the learner trains and publishes, and actors and the evaluator
  load (by default its output's argmax is the greedy action: Q-values or policy logits);
* ``action_kinds`` -- the action spaces it handles (``"discrete"``, ``"continuous"``): a
  torch-free declaration, checked before any process starts;
* ``make_eval_policy`` -- the greedy policy of the evaluator and of checkpoints (default: the
  argmax of the network's scores);
* ``make_acting`` -- an actor's acting step (policy, local staging, message encoding), run by
  :func:`rlfleet.agents.common.actor.run_actor`;
* ``make_learner`` -- the learner's data threads and update, served by
  :class:`rlfleet.agents.common.learner.LearnerShell` (publication, checkpoints, reports);
* ``message_kind`` / ``message_schema`` / ``message_check`` -- what actors send, and the shape
  and value checks every inbox applies before the learner sees it;
* ``check_env`` / ``prepare`` -- refusals and path resolution before any process starts;
* ``service`` -- an optional store at the memory node (the Ape-X family's replay service,
  :func:`rlfleet.agents.common.service_spec.replay_service_spec`).

Specs are cheap to import: factories import their heavy modules (torch) when called, so listing
algorithms or validating a config never imports torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rlfleet.envs.spec import EnvSpec


@dataclass(frozen=True)
class ActorSlot:
    """Where one actor sits: explorer ``index`` of ``count`` (epsilon ladders and the like), and
    ``member``, its id in the run (a local index, or a remote actor's run-wide id)."""

    index: int
    count: int
    member: str | int


def require_discrete(config: Any, env: EnvSpec, title: str) -> None:
    """A Discrete action space numbered from 0 (EnvError otherwise)."""
    from rlfleet.envs.make import check_discrete

    check_discrete(env.action_space, env.env_id, algorithm=title)


def action_handlers() -> dict[str, list[str]]:
    """Action kind -> every registered algorithm that declares it (for error messages)."""
    from rlfleet.agents import registry

    out: dict[str, list[str]] = {}
    for name in registry.names():
        for kind in registry.spec(name).action_kinds:
            out.setdefault(kind, []).append(name)
    return out


def lazy(target: str, arity: int | None = None) -> Callable[..., Any]:
    """A spec factory that imports ``"package.module:name"`` when first called and calls it, so
    spec modules import no torch. ``arity``: pass on only the first ``arity`` positional
    arguments (e.g. 3 for a learner built from ``config, env, seed`` without the ``ends``)."""
    module, _, name = target.partition(":")

    def call(*args: Any, **kwargs: Any) -> Any:
        factory = getattr(importlib.import_module(module), name)
        return factory(*(args if arity is None else args[:arity]), **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"``{target}``, imported on first use."
    return call


def _nothing(config: Any) -> None:
    return None


@dataclass(frozen=True)
class ServiceSpec:
    """A store that lives at the memory node and samples for the learner.

    ``role`` names the host command / local role that runs it (``rlfleet replay``).
    ``make_service(config, env, seed, ends, service_id)`` builds the service on its
    :class:`~rlfleet.transport.ports.ServiceEnds`; ``make_remote_store(config, env, batches,
    updates)`` is the learner's side (an inbox of batches, an outbox for updates).
    ``batch_kind`` / ``update_kinds`` are the message kinds on those two queues, ``check``
    refuses configs the service cannot serve, ``describe(stats)`` is one status line."""

    role: str
    batch_kind: str
    update_kinds: tuple[str, ...]
    make_service: Callable[..., Any]
    make_remote_store: Callable[..., Any]
    check: Callable[[Any], None] = _nothing
    describe: Callable[[dict[str, Any]], str] = str


@dataclass(frozen=True)
class AgentSpec:
    """Everything the rest of rlfleet asks of one agent family (see the module docstring).

    Signatures:

    * ``make_network(config, env) -> nn.Module``
    * ``make_acting(config, env, slot, seed) -> Acting`` (:mod:`rlfleet.agents.common.actor`)
    * ``make_learner(config, env, seed, ends) -> LearnerCore``
      (:mod:`rlfleet.agents.common.learner`; ``ends`` is the learner's
      :class:`~rlfleet.transport.ports.RoleEnds`: its inbox, or a remote ``store``)
    * ``message_schema(config, env) -> {name: (dtype, per-item shape)}`` or None when the
      learner checks messages itself
    * ``check_env(config, env)``: raise EnvError/ConfigError for environments it cannot train
      (after the action space was checked against ``action_kinds``)
    * ``make_eval_policy(config, env, net, seed) -> policy`` with ``policy.act(obs, epsilons)
      -> actions`` and ``policy.reset(done_or_None)``: the greedy policy the evaluator plays and
      checkpoints act with; None: the argmax of the network's scores
      (:class:`~rlfleet.agents.common.networks.ActionScores`)
    * ``prepare(config)``: resolve and check files the config names (in the launcher process,
      before anything is written; must not import torch)
    """

    name: str
    title: str
    config_class: type
    message_kind: str
    make_network: Callable[..., Any]
    make_acting: Callable[..., Any]
    make_learner: Callable[..., Any]
    message_schema: Callable[..., dict[str, tuple[str, tuple[int, ...]]] | None] | None = None
    #: ``(config, env) -> check(message) -> problem or ""``: value checks both transports apply
    #: after the schema (finite numbers, actions in the action space, sizes the store can hold)
    message_check: Callable[..., Callable[[Any], str]] | None = None
    check_env: Callable[[Any, EnvSpec], None] | None = None
    prepare: Callable[[Any], None] = _nothing
    #: Action spaces this agent handles: ``"discrete"`` and/or ``"continuous"``
    #: (:data:`rlfleet.envs.spec.ACTION_KINDS`); refusals name the algorithms that can.
    action_kinds: tuple[str, ...] = ("discrete",)
    make_eval_policy: Callable[..., Any] | None = None
    service: ServiceSpec | None = None
    #: Heavy modules the fleet's forkserver imports once, so roles start in milliseconds.
    preload: tuple[str, ...] = ()

    def check(self, config: Any, env: EnvSpec) -> None:
        """Refuse an environment this agent cannot train (EnvError naming the space and the
        algorithms that can handle it), then apply the agent's own ``check_env``."""
        from rlfleet.agents.common.sections import check_randomize
        from rlfleet.envs.spec import check_action_kind

        check_action_kind(
            env.action_space, env.env_id, self.title, self.action_kinds, action_handlers()
        )
        check_randomize(config.env.id, config.eval.randomize, "eval")
        if self.check_env is not None:
            self.check_env(config, env)

    def schema(self, config: Any, env: EnvSpec) -> dict[str, tuple[str, tuple[int, ...]]] | None:
        return self.message_schema(config, env) if self.message_schema is not None else None

    def content_check(self, config: Any, env: EnvSpec) -> Callable[[Any], str] | None:
        return self.message_check(config, env) if self.message_check is not None else None
