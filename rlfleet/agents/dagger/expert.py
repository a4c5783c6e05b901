"""DAgger's expert: a scripted policy (``MODULE:FUNCTION``) or any run's checkpoint, labelling a
batch of states at a time.

:func:`check_expert` runs in the launcher before any process starts and imports no torch;
:func:`load_expert` builds the labeller in the actors.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rlfleet.agents.common.checkpoint import check_policy_checkpoint
from rlfleet.envs.demonstrators import import_policy
from rlfleet.envs.spec import EnvSpec
from rlfleet.errors import ConfigError

WHAT = "dagger.expert"


def is_scripted(expert: str) -> bool:
    """``MODULE:FUNCTION`` (and not an existing path): a scripted policy."""
    return ":" in expert and not Path(expert).exists()


class Expert:
    """``expert(obs [K, *obs]) -> actions int64 [K]``. A scripted function that takes a batch is
    called once per batch; one that takes a single observation, once per row."""

    def __init__(self, act: Callable[[np.ndarray], Any], batched: bool, num_actions: int) -> None:
        self.act, self.batched, self.num_actions = act, batched, num_actions

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        if self.batched:
            actions = np.asarray(self.act(obs), np.int64)
        else:
            actions = np.fromiter((int(self.act(o)) for o in obs), np.int64, len(obs))
        if actions.shape != (len(obs),) or ((actions < 0) | (actions >= self.num_actions)).any():
            raise ConfigError(
                f"{WHAT} returned {actions!r} for {len(obs)} observations; expected one action "
                f"in 0..{self.num_actions - 1} each"
            )
        return actions


def _scripted(expert: str, env: EnvSpec) -> Expert:
    fn = import_policy(expert, WHAT)
    sample = np.stack([_probe_obs(env)] * 3)
    try:
        out = np.asarray(fn(sample))
        batched = out.shape == (len(sample),) and out.dtype.kind in "iu"
    except Exception:  # noqa: BLE001 - a single-observation function may fail on a batch
        batched = False
    labeller = Expert(fn, batched, env.num_actions)
    labeller(sample)  # a wrong signature or action fails here, with the message above
    return labeller


def _probe_obs(env: EnvSpec) -> np.ndarray:
    """An observation of the right shape and dtype (zeros) to try the expert on."""
    return np.zeros(env.obs_shape, env.obs_dtype)


def check_expert(expert: str, env: EnvSpec) -> str:
    """The expert as the run should store it (a checkpoint pinned to its absolute folder), after
    checking it labels ``env``'s states; ConfigError / CheckpointError naming it otherwise."""
    if is_scripted(expert):
        _scripted(expert, env)
        return expert
    if not Path(expert).exists():
        raise ConfigError(
            f"{WHAT} {expert!r} is neither MODULE:FUNCTION of a scripted policy (e.g. "
            "rlfleet.envs.demonstrators:cartpole_balance) nor an existing run or checkpoint folder"
        )
    folder, _ = check_policy_checkpoint(expert, env, "expert")
    return str(folder)


def load_expert(expert: str, env: EnvSpec) -> Expert:
    """The labeller of ``expert``: the scripted function, or the checkpoint's greedy policy."""
    if is_scripted(expert):
        return _scripted(expert, env)
    import torch

    from rlfleet.agents.common.networks import load_network

    scores = load_network(expert).scores()
    scores.requires_grad_(False)

    def greedy(obs: np.ndarray) -> np.ndarray:
        scores.reset(None)  # a recurrent expert sees each state afresh
        with torch.no_grad():
            return scores(torch.from_numpy(np.ascontiguousarray(obs))).argmax(dim=1).numpy()

    return Expert(greedy, True, env.num_actions)
