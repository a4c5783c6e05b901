"""The one root of every error rlfleet raises on purpose.

Catch :class:`RlfleetError` to handle anything the package reports; the subclasses
say which layer complained. Subclasses also derive from the matching builtin
(``ValueError``) where callers conventionally expect it.
"""

from __future__ import annotations


class RlfleetError(Exception):
    """Root of all rlfleet errors."""


class ConfigError(RlfleetError, ValueError):
    """A preset, config key or value is unknown or ill-typed."""


class ReplayError(RlfleetError, ValueError):
    """Bad input to a replay component (dtype, shape, priority, index, size)."""


class EnvError(RlfleetError, ValueError):
    """An environment id or space is unknown or unsupported."""


class CodecError(RlfleetError, ValueError):
    """A wire message is malformed, truncated, oversized or foreign."""


class TransportError(RlfleetError):
    """A transport could not deliver or fetch (after its retries)."""


class CheckpointError(RlfleetError):
    """A checkpoint is missing, incomplete or does not match the run."""
