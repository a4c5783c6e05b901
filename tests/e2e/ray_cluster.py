"""Process checks for the ``--ray`` e2e test; the two-node cluster itself is
:class:`benchmarks.cluster.nodes.TwoNodeCluster` (shared with ``rlfleet bench cluster``)."""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks.cluster.nodes import TwoNodeCluster

__all__ = ["TwoNodeCluster", "group_members", "redis_servers_of_rlfleet"]


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(entry.name))
    return out


def redis_servers_of_rlfleet() -> list[int]:
    """redis-server processes rlfleet started on a node (their working dir is its temp dir)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if "rlfleet-redis-" in cwd:
            out.append(int(entry.name))
    return out
