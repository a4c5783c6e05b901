"""Sequence-level RL as an agent spec: supervised pre-training and self-critical sequence
training (Rennie et al., 2017) of an attentional encoder-decoder on sequence tasks
(``Seq/G2P-v0``). Heavy modules are imported inside the factories: no torch here."""

from __future__ import annotations

from typing import Any

from rlfleet.agents.scst.config import ScstConfig
from rlfleet.agents.scst.messages import SEQUENCES_KIND, message_check, message_schema
from rlfleet.agents.spec import AgentSpec, lazy
from rlfleet.envs.spec import EnvSpec


def _eval_policy(config: Any, env: EnvSpec, net: Any, seed: int) -> Any:
    from rlfleet.agents.scst.network import GreedyPolicy

    return GreedyPolicy(net, env, config, seed)


#: env.kwargs that shape the vocabularies and the split: an init_from run must share them.
DATA_KEYS = (
    "corpus",
    "stress",
    "source_tokens",
    "src_vocab",
    "tgt_vocab",
    "max_words",
    "split_seed",
    "dev_fraction",
    "test_fraction",
    "max_output_len",
)


def prepare(config: Any) -> None:
    """Load the task once (corpus and length-cap errors before any process starts) and pin
    ``scst.init_from`` to a checkpoint folder whose model and data match this run's."""
    from rlfleet.agents.common.checkpoint import read_state, resolve_checkpoint
    from rlfleet.envs.sequences import SeqOptions, load_task
    from rlfleet.errors import ConfigError

    load_task(SeqOptions.parse(config.env.kwargs))
    sc = config.scst
    if not sc.init_from:
        return
    folder = resolve_checkpoint(sc.init_from).resolve()
    saved = read_state(folder).get("config", {})
    theirs_env = saved.get("env", {}).get("kwargs", {})
    ours = SeqOptions.parse(config.env.kwargs).__dict__
    theirs = SeqOptions.parse({k: v for k, v in theirs_env.items() if k != "group_size"}).__dict__
    differ = [k for k in DATA_KEYS if ours[k] != theirs[k]]
    if saved.get("run", {}).get("algorithm") != "scst" or differ:
        raise ConfigError(
            f"scst.init_from {str(folder)!r} is not an scst run on the same data "
            f"(env.kwargs differing: {', '.join(differ) or 'none'}; algorithm "
            f"{saved.get('run', {}).get('algorithm')!r})"
        )
    model = saved.get("model", {})
    mine = {k: getattr(config.model, k) for k in ("embed", "hidden", "layers")}
    if any(model.get(k) != v for k, v in mine.items()):
        raise ConfigError(f"scst.init_from {str(folder)!r} has model {model}; this run's is {mine}")
    sc.init_from = str(folder)


SPEC = AgentSpec(
    name="scst",
    title="SCST",
    config_class=ScstConfig,
    message_kind=SEQUENCES_KIND,
    make_network=lazy("rlfleet.agents.scst.network:build_network"),
    make_acting=lazy("rlfleet.agents.scst.acting:ScstActing"),
    make_learner=lazy("rlfleet.agents.scst.learner:ScstLearner", 3),
    message_schema=message_schema,
    message_check=message_check,
    make_eval_policy=_eval_policy,
    prepare=prepare,
    preload=("rlfleet.agents.scst.acting", "rlfleet.agents.scst.learner"),
)
