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
