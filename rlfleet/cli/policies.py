"""Turn a checkpoint (or run folder) into a greedy policy callable: observation -> action."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np


def load_greedy_policy(path: str) -> Callable[[np.ndarray], int]:
    """Greedy policy of an Ape-X checkpoint; the network is rebuilt from the saved config."""
    import torch

    from rlfleet.config import from_dict
    from rlfleet.envs import make_env
    from rlfleet.models import build_q_network
    from rlfleet.runtime.apex_config import ApexConfig
    from rlfleet.runtime.checkpoint import load_checkpoint, resolve_checkpoint

    folder = resolve_checkpoint(Path(path))
    tensors, _, state = load_checkpoint(folder)
    config = from_dict(ApexConfig, state["config"])
    env = make_env(config.env.id, env_kwargs=config.env.kwargs or None)
    obs_shape, num_actions = env.observation_space.shape, int(env.action_space.n)
    env.close()
    net = build_q_network(
        obs_shape,
        num_actions,
        torso=config.model.torso,
        hidden=config.model.hidden,
        dueling=config.model.dueling,
    )
    net.load_state_dict(
        {k[len("online.") :]: v for k, v in tensors.items() if k.startswith("online.")}
    )
    net.eval()

    @torch.no_grad()
    def policy(obs: np.ndarray) -> int:
        return int(net(torch.as_tensor(np.asarray(obs)[None])).argmax(dim=1).item())

    return policy
