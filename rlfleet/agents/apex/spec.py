"""Ape-X DQN (Horgan et al. 2018) and its demonstration variants, as one agent spec.

DQfD and Ape-X DQfD are not agents of their own: a ``[dqfd]`` section gives the same learner
another store (demonstrations in the reserved region, or a separate expert replay) and another
loss. Heavy modules are imported inside the factories, so this module imports no torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlfleet.agents.apex.config import ApexConfig
from rlfleet.agents.apex.messages import EXPERIENCE_KIND, message_check, message_schema
from rlfleet.agents.common.service_spec import replay_service_spec
from rlfleet.agents.spec import AgentSpec, lazy
from rlfleet.envs.spec import EnvSpec
from rlfleet.errors import ConfigError


def _learner(config: Any, env: EnvSpec, seed: int, ends: Any) -> Any:
    from rlfleet.agents.apex.learner import ApexLearner

    return ApexLearner(config, env, seed, store=ends.store)


def prepare(config: Any) -> None:
    """Before any process starts: check ``dqfd.demos`` (below) and that ``actor.int8`` can
    quantize this network."""
    if config.actor.int8:
        _check_int8(config)
    if config.dqfd.enabled:
        _prepare_demos(config)


def _check_int8(config: Any) -> None:
    """ConfigError unless this torch build has a quantized engine and the Q-network is one
    :mod:`rlfleet.models.int8_policy` quantizes (imports torch, for int8 runs only)."""
    from rlfleet.agents.apex.network import build_network
    from rlfleet.envs.spec import probe_env
    from rlfleet.models.int8 import pick_engine
    from rlfleet.models.int8_policy import QuantizableQNetwork

    pick_engine()
    try:
        QuantizableQNetwork(build_network(config, probe_env(config.env.id, config.env.kwargs)))
    except ConfigError as exc:
        raise ConfigError(f"actor.int8 = true: {exc}") from None


def _prepare_demos(config: Any) -> None:
    """Make ``dqfd.demos`` absolute (roles may run elsewhere) and check the file against the
    environment now; a missing file says how to record one."""
    d = config.dqfd
    from rlfleet.envs.spec import probe_env
    from rlfleet.replay import load_demos

    path = Path(d.demos).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(
            f"dqfd.demos: no demonstration file at {str(path)!r}; record one first, e.g. "
            f"`rlfleet record {config.env.id} --policy MODULE:FUNCTION --episodes 20 "
            f"--out {d.demos}` (see docs/demonstrations.md)"
        )
    env = probe_env(config.env.id, config.env.kwargs)
    load_demos(path, config.env.id, env.obs_shape, env.obs_dtype, env.num_actions)
    d.demos = str(path)


REPLAY_SERVICE = replay_service_spec(
    "rlfleet.agents.apex.service:ReplayService", "rlfleet.agents.apex.remote_store:RemoteStore"
)

SPEC = AgentSpec(
    name="apex",
    title="Ape-X DQN",
    config_class=ApexConfig,
    message_kind=EXPERIENCE_KIND,
    make_network=lazy("rlfleet.agents.apex.network:build_network"),
    make_acting=lazy("rlfleet.agents.apex.acting:make_acting"),
    make_learner=_learner,
    message_schema=message_schema,
    message_check=message_check,
    prepare=prepare,
    service=REPLAY_SERVICE,
    preload=("rlfleet.agents.apex.acting", "rlfleet.agents.apex.learner"),
)
