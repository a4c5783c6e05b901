"""The probe table names real tests and well-formed commands."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from benchmarks.probes import COMMANDS, ROOT, TESTS, CommandProbe, run_command

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("probe", TESTS, ids=lambda p: p.nodeid.split("::")[-1])
def test_every_test_probe_names_a_test_that_exists(probe):
    path, name = probe.nodeid.split("::")
    tree = ast.parse((ROOT / path).read_text())
    assert name in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_every_issue_item_has_a_probe():
    assert {p.item for p in [*COMMANDS, *TESTS]} >= set(range(1, 12))


def test_a_command_probe_fails_when_the_message_is_not_there(tmp_path: Path):
    probe = CommandProbe(8, "a bad value", ("config", "cartpol"), "no such words in the error")
    row = run_command(probe, tmp_path, 0)
    assert not row["ok"] and "not in the output" in row["seen"]
    good = CommandProbe(8, "a bad value", ("config", "cartpol"), "unknown preset")
    assert run_command(good, tmp_path, 1)["ok"]
