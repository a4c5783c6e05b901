"""Key names: every key a run touches lives under ``rlfleet:{run}:`` so runs sharing one Redis
never collide, and one ``SCAN MATCH rlfleet:{run}:*`` finds (and can delete) all of a run.
"""

from __future__ import annotations

import re

from rlfleet.errors import ConfigError

#: Run names and member ids: no ':' (the key separator), no spaces or glob characters, bounded.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_name(value: str | int, what: str) -> str:
    """Return ``value`` as a key part, or raise :class:`ConfigError` naming the allowed form."""
    text = str(value)
    if not NAME_PATTERN.fullmatch(text):
        raise ConfigError(
            f"{what} {text!r} is not a valid key part; use 1-64 characters from "
            "A-Z a-z 0-9 . _ - starting with a letter or digit"
        )
    return text


def prefix(run: str) -> str:
    """``rlfleet:{run}:``, the namespace of one run."""
    return f"rlfleet:{check_name(run, 'run name')}:"


def key(run: str, *parts: str) -> str:
    """``rlfleet:{run}:part1:part2...``"""
    return prefix(run) + ":".join(parts)


def experience_key(run: str) -> str:
    """The run's bounded experience list (actors push, the learner pops)."""
    return key(run, "experience")


def pushed_key(run: str) -> str:
    """Hash of messages pushed per actor id (for status and benchmarks)."""
    return key(run, "pushed")
