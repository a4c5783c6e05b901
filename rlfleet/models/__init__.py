"""rlfleet.models: Q-networks, policy-value and actor-critic networks (MLP, MinAtar CNN, Nature
CNN), optionally with an LSTM core; policy heads for discrete and Box actions; observation
normalisation; and parameters as one flat vector.

Names are loaded on first use (PEP 562), so ``from rlfleet.models.names import ...`` -- what
configs validate against -- imports no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the submodule that defines it
_EXPORTS = {
    **dict.fromkeys(("ACTIVATIONS", "CORES", "TORSOS"), "names"),
    **dict.fromkeys(
        ("ActorCriticNetwork", "build_actor_critic", "orthogonal_init"), "actor_critic"
    ),
    **dict.fromkeys(
        (
            "LOG_STD_MAX",
            "LOG_STD_MIN",
            "CategoricalHead",
            "GaussianHead",
            "PolicyHead",
            "is_continuous_head",
        ),
        "heads",
    ),
    **dict.fromkeys(
        ("OBS_CLIP", "ObsNormalizer", "find_obs_normalizer", "update_obs_stats"), "normalize"
    ),
    **dict.fromkeys(
        (
            "DuelingHead",
            "PolicyValueNetwork",
            "QNetwork",
            "build_policy_value_network",
            "build_q_network",
            "build_torso",
            "resolve_torso",
        ),
        "networks",
    ),
    **dict.fromkeys(("CoreStateHolder", "LSTMPolicyValueNetwork", "is_recurrent"), "recurrent"),
    **dict.fromkeys(("flatten_into", "layout_signature", "load_flat", "param_count"), "params"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rlfleet.models' has no attribute {name!r}")
    return getattr(importlib.import_module(f"rlfleet.models.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return __all__
