"""``env.kwargs`` of the non-gym task envs (sequences, OCR) checked against an options
dataclass: unknown keys and values of the wrong type are refused with the valid ones named."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from rlfleet.errors import ConfigError

__all__ = ["checked_kwargs"]


def checked_kwargs(cls: type, kwargs: dict[str, Any] | None, task: str) -> dict[str, Any]:
    """``kwargs`` ready for ``cls(**kwargs)``: every key a field of the dataclass ``cls`` (whose
    defaults give the types), ints widened to floats where a float is wanted; ConfigError naming
    the unknown keys (for ``task``, e.g. "an OCR task") or the bad value otherwise."""
    kwargs = dict(kwargs or {})
    valid = [f.name for f in fields(cls)]
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ConfigError(f"env.kwargs {unknown} are unknown for {task}; valid: {', '.join(valid)}")
    for key, value in kwargs.items():
        want = type(getattr(cls, key))
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            kwargs[key] = float(value)
        elif not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise ConfigError(f"env.kwargs.{key} must be {want.__name__}, got {value!r}")
    return kwargs


def lockstep_group(env_id: str, num_envs: int, group_size: int, training: bool, unit: str) -> int:
    """Episodes decoded side by side per ``unit`` (a source, an image): ``group_size`` while
    training with more than one env; 1 for evaluation and for a single env (a probe), which
    decode each ``unit`` once. EnvError unless ``num_envs`` is a multiple of it."""
    from rlfleet.errors import EnvError

    group = group_size if training and num_envs > 1 else 1
    if num_envs % group:
        raise EnvError(
            f"{env_id}: envs per actor ({num_envs}) must be a multiple of "
            f"env.kwargs.group_size ({group}): each {unit} is decoded by one group"
        )
    return group
