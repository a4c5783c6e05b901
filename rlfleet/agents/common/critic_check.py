"""The check of ``model.critic_inputs`` against an environment, without torch (agent specs call
it before any process starts); the network side is :mod:`.critic_inputs`."""

from __future__ import annotations

from rlfleet.errors import ConfigError


def check_critic_inputs(k: int, obs_shape: tuple[int, ...], normalize_obs: bool) -> None:
    """ConfigError unless ``k`` critic-only entries can be cut from observations of this shape."""
    if k == 0:
        return
    if len(obs_shape) != 1 or not 0 < k < obs_shape[0]:
        raise ConfigError(
            f"model.critic_inputs = {k} needs flat observations with more than {k} entries; "
            f"the environment's observations have shape {tuple(obs_shape)}"
        )
    if normalize_obs:
        raise ConfigError(
            "model.critic_inputs and env.normalize_obs cannot be combined (the normaliser sees "
            "the policy's inputs only); set env.normalize_obs = false"
        )
