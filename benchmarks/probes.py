"""`rlfleet bench probes`: the fault and hostile-input probes of issue 19, re-run as one table.

Two kinds of probe:

* **command probes** run ``rlfleet ...`` as a user would, in a scratch folder, and check the
  exit code, that the message names the bad value, that no traceback is printed, that a password
  never shows, and that nothing was written where a refused run would have written;
* **test probes** run the named test of the suite (a fault needs servers, kills and timing that a
  one-line command cannot stage); the probe passes when the test passes.

Prints one row per probe (item of the issue, what was tried, outcome) and writes ``--json``.
Exit status 1 when any probe fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class CommandProbe:
    """``rlfleet ARGV`` must exit ``rc`` printing ``needle``; ``secret`` must never appear."""

    item: int
    what: str
    argv: tuple[str, ...]
    needle: str
    rc: int = 2
    secret: str = ""
    setup: str = ""  # name of a scratch-folder preparation (see _prepare)
    untouched: bool = True  # the run folder must not have been created or changed


@dataclass(frozen=True)
class TestProbe:
    """The test ``nodeid`` of the suite must pass."""

    item: int
    what: str
    nodeid: str
    extra: tuple[str, ...] = field(default_factory=tuple)


def _train(*sets: str) -> tuple[str, ...]:
    return (
        "train",
        "cartpole",
        "--run-dir",
        "{run}",
        "--quiet",
        *(a for s in sets for a in ("--set", s)),
    )


COMMANDS: list[CommandProbe] = [
    CommandProbe(8, "learner.lr=nan", _train("learner.lr=nan"), "learner.lr"),
    CommandProbe(8, "run.max_seconds=nan", _train("run.max_seconds=nan"), "run.max_seconds"),
    CommandProbe(8, "model.hidden=[-5]", _train("model.hidden=[-5]"), "model.hidden"),
    CommandProbe(8, "replay.alpha=-1", _train("replay.alpha=-1"), "replay.alpha"),
    CommandProbe(8, "run.seed=-1", _train("run.seed=-1"), "run.seed"),
    CommandProbe(8, "env.max_episode_steps=-1", _train("env.max_episode_steps=-1"), "max_episode"),
    CommandProbe(8, "actor.epsilon=5", _train("actor.epsilon=5"), "actor.epsilon"),
    CommandProbe(
        8, "learning_starts above capacity", _train("replay.learning_starts=200000"), "capacity"
    ),
    CommandProbe(8, "learner.lr=inf", _train("learner.lr=inf"), "learner.lr"),
    CommandProbe(9, "run folder is a file", _train(), "not a folder", setup="file"),
    CommandProbe(
        7, "finished run folder reused without --resume", _train(), "--resume", setup="finished"
    ),
    CommandProbe(
        7,
        "--resume of a corrupt checkpoint names the file",
        ("train", "--resume", "{run}", "--quiet"),
        "model.safetensors",
        setup="corrupt",
    ),
    CommandProbe(
        9,
        "--resume with non-numeric counters names state.json",
        ("train", "--resume", "{run}", "--quiet"),
        "state.json",
        setup="bad-counters",
    ),
    CommandProbe(
        7,
        "--teacher that is not a checkpoint names it",
        ("train", "impala-cartpole", "--run-dir", "{run}", "--teacher", "{scratch}/nothing"),
        "nothing",
    ),
    CommandProbe(
        9,
        "Redis URL with a bad port, password hidden",
        ("actor", "--redis", "redis://:hunter2pw@127.0.0.1:99999", "--run", "x"),
        "Port out of range",
        secret="hunter2pw",
    ),
    CommandProbe(
        9,
        "Redis URL with one slash, password hidden",
        ("actor", "--redis", "redis:/:hunter2pw@127.0.0.1:6379", "--run", "x"),
        "two slashes",
        secret="hunter2pw",
    ),
    CommandProbe(
        9,
        "run name with a key separator",
        ("actor", "--redis", "redis://127.0.0.1:1", "--run", "a:b"),
        "not a valid key part",
    ),
    CommandProbe(
        11,
        "the cartpole preset checkpoints periodically",
        ("config", "cartpole"),
        "checkpoint_interval_s = 30",
        rc=0,
        untouched=False,
    ),
]

_CODEC = "tests/unit/transport/test_codec_contract.py"
_MESSAGES = "tests/unit/agents/apex/test_messages.py"
_FAULTS = "tests/e2e/test_faults_local.py"
_CLAIM = "tests/integration/fleet/test_redis_run.py"
TESTS: list[TestProbe] = [
    TestProbe(
        1,
        "NaN priority / action out of range / bad meta: dropped, learner goes on",
        f"{_MESSAGES}::test_hostile_messages_are_dropped_at_the_inbox_and_the_learner_keeps_inserting",
    ),
    TestProbe(
        1,
        "a batch larger than the replay refused",
        f"{_MESSAGES}::test_a_batch_larger_than_the_replay_is_refused",
    ),
    TestProbe(1, "every bad value named", f"{_MESSAGES}::test_bad_values_are_named"),
    TestProbe(2, "list/dict as dtype", f"{_CODEC}::test_unhashable_dtype_is_a_codec_error"),
    TestProbe(
        2,
        "shape whose int64 product wraps",
        f"{_CODEC}::test_shape_whose_int64_product_wraps_is_a_codec_error",
    ),
    TestProbe(
        2,
        "more than 64 dimensions",
        f"{_CODEC}::test_more_dimensions_than_every_numpy_builds_is_a_codec_error",
    ),
    TestProbe(
        2, "absurd dimensions", f"{_CODEC}::test_absurd_dimensions_of_empty_arrays_are_codec_errors"
    ),
    TestProbe(
        2,
        "zstd/lz4 bombs within 1 MiB (tracemalloc)",
        f"{_CODEC}::test_bomb_is_refused_within_1mib_traced",
    ),
    TestProbe(
        2,
        "zstd/lz4 bombs within 1 MiB (peak RSS)",
        f"{_CODEC}::test_bombs_are_refused_within_1mib_peak_rss",
    ),
    TestProbe(
        2,
        "fuzzed messages: CodecError or a Message",
        f"{_CODEC}::test_fuzzed_messages_decode_or_raise_codec_error",
    ),
    TestProbe(
        3,
        "second learner in the gap after a Redis restart",
        f"{_CLAIM}::test_a_second_learner_is_refused_in_the_gap_after_a_redis_restart",
    ),
    TestProbe(
        3,
        "two learners starting together",
        f"{_CLAIM}::test_two_learners_starting_together_get_one_run",
    ),
    TestProbe(
        3,
        "a host whose claim was taken leaves the other's keys",
        f"{_CLAIM}::test_a_host_whose_claim_was_taken_stops_and_leaves_the_others_keys",
    ),
    TestProbe(
        4,
        "actor/evaluator join after a Redis restart",
        f"{_CLAIM}::test_hosts_can_join_after_a_redis_restart",
    ),
    TestProbe(
        5,
        "orphaned remote actor ends when the learner host dies",
        "tests/integration/fleet/hosts/test_actors.py::test_an_actor_without_its_supervisor_ends_when_the_learner_host_dies",
    ),
    TestProbe(
        5,
        "SIGKILL of the launcher: the learner still checkpoints",
        f"{_FAULTS}::test_a_killed_launcher_does_not_lose_the_run",
    ),
    TestProbe(
        5,
        "second Ctrl-C waits for the save",
        f"{_FAULTS}::test_a_second_ctrl_c_does_not_kill_the_roles_before_they_save",
    ),
    TestProbe(
        6,
        "resumed curves continue exactly (no overlap, wall_s monotonic)",
        f"{_FAULTS}::test_resumed_curves_continue_exactly_after_a_crash",
    ),
    TestProbe(
        7,
        "stale temporary folders cleaned on the next start",
        "tests/unit/test_atomic.py::test_stale_temporaries_of_dead_writers_are_cleaned_live_ones_kept",
    ),
    TestProbe(
        7,
        "checkpoint of another network refused naming the keys",
        "tests/unit/agents/common/test_checkpoint.py::test_a_checkpoint_of_another_network_is_refused_naming_the_keys",
    ),
    TestProbe(
        8,
        "demonstrations with NaN observations",
        "tests/unit/replay/test_demos.py::test_observations_that_are_not_finite_are_rejected_naming_file_and_rows",
    ),
    TestProbe(
        9,
        "read-only run folder",
        "tests/unit/fleet/test_rundir.py::test_a_folder_that_cannot_be_written_is_refused_with_the_reason",
    ),
    TestProbe(
        10,
        "a client that never answers the challenge",
        "tests/unit/transport/test_local.py::test_a_client_that_never_answers_the_challenge_does_not_block_others",
    ),
    TestProbe(
        11,
        "steps dropped in an outage do not count toward the budget",
        "tests/unit/agents/common/test_actor.py::test_steps_an_outbox_dropped_do_not_count_toward_the_budget",
    ),
    TestProbe(
        0,
        "chaos: random kills of actor, evaluator, replay service, redis-server",
        "tests/e2e/test_chaos.py::test_the_run_survives_random_kills_of_its_roles_and_of_redis",
    ),
]


def _prepare(kind: str, scratch: Path, run: Path) -> None:
    """Stage the folder a command probe starts from."""
    if kind == "file":
        run.write_text("not a run folder\n")
    elif kind in ("finished", "corrupt", "bad-counters"):
        base = scratch / "base"
        if not base.exists():  # one tiny real run, copied for each probe that needs one
            sets = [
                "run.total_env_steps=600",
                "replay.learning_starts=100",
                "eval.final_episodes=1",
            ]
            argv = [*_rlfleet(), "train", "cartpole", "--run-dir", str(base), "--quiet"]
            subprocess.run(
                [*argv, *(a for s in sets for a in ("--set", s))],
                check=True,
                capture_output=True,
                timeout=300,
            )
        subprocess.run(["cp", "-r", str(base), str(run)], check=True)
        ckpt = max((run / "checkpoints").glob("ckpt-*"))
        if kind == "corrupt":
            (ckpt / "model.safetensors").write_bytes(b"\x00" * 64)
        elif kind == "bad-counters":
            state = json.loads((ckpt / "state.json").read_text())
            state["counters"] = {k: "many" for k in state.get("counters", {"updates": 0})}
            (ckpt / "state.json").write_text(json.dumps(state))
        (run / "checkpoints" / "best").exists() and subprocess.run(
            ["rm", "-rf", str(run / "checkpoints" / "best")], check=True
        )


def _rlfleet() -> list[str]:
    return [sys.executable, "-c", "import sys; from rlfleet.cli.main import main; sys.exit(main())"]


def _snapshot(path: Path) -> dict[str, float]:
    if not path.exists():
        return {}
    if path.is_file():
        return {str(path): path.stat().st_mtime}
    return {str(p): p.stat().st_mtime for p in path.rglob("*")}


def run_command(probe: CommandProbe, scratch: Path, index: int) -> dict[str, Any]:
    run = scratch / f"run{index}"
    if probe.setup:
        _prepare(probe.setup, scratch, run)
    before = _snapshot(run)
    argv = [a.format(run=run, scratch=scratch) for a in probe.argv]
    start = time.perf_counter()
    done = subprocess.run([*_rlfleet(), *argv], capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - start
    out = done.stdout + done.stderr
    problems = []
    if done.returncode != probe.rc:
        problems.append(f"exit {done.returncode}, expected {probe.rc}")
    if probe.needle not in out:
        problems.append(f"{probe.needle!r} not in the output")
    if "Traceback" in out:
        problems.append("a traceback")
    if probe.secret and probe.secret in out:
        problems.append("the password is shown")
    if probe.untouched and _snapshot(run) != before:
        problems.append("the run folder was written")
    message = next((ln for ln in out.splitlines() if "error" in ln.lower()), out.strip()[-120:])
    return {
        "item": probe.item,
        "what": probe.what,
        "command": "rlfleet " + " ".join(argv),
        "ok": not problems,
        "seen": "; ".join(problems) or message[:160],
        "seconds": round(seconds, 2),
    }


def run_tests(probes: list[TestProbe], scratch: Path) -> list[dict[str, Any]]:
    report = scratch / "junit.xml"
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}"]
    start = time.perf_counter()
    subprocess.run(
        [*argv, *(p.nodeid for p in probes)], cwd=ROOT, capture_output=True, timeout=3600
    )
    total = time.perf_counter() - start
    outcome: dict[str, tuple[bool, float]] = {}
    for case in ET.parse(report).iter("testcase"):
        path = case.get("classname", "").replace(".", "/")
        name = case.get("name", "").split("[")[0]
        failed = any(child.tag in ("failure", "error", "skipped") for child in case)
        ok_before, secs = outcome.get(f"{path}::{name}", (True, 0.0))
        outcome[f"{path}::{name}"] = (ok_before and not failed, secs + float(case.get("time", 0)))
    rows = []
    for probe in probes:
        key = next((k for k in outcome if k.endswith(probe.nodeid.replace(".py", ""))), None)
        ok, secs = outcome.get(key, (False, 0.0)) if key else (False, 0.0)
        rows.append(
            {
                "item": probe.item,
                "what": probe.what,
                "command": f"python -m pytest {probe.nodeid}",
                "ok": ok,
                "seen": "test passed" if ok else ("not run" if key is None else "FAILED"),
                "seconds": round(secs, 2),
            }
        )
    print(f"(test probes: {total:.0f} s)", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="rlfleet bench probes", description=__doc__.split("\n")[0])
    p.add_argument("--only", choices=("commands", "tests"), default=None)
    p.add_argument("--json", default=None, metavar="PATH")
    args = p.parse_args(argv)
    os.environ.pop("RLFLEET_REDIS_URL", None)  # probes name their URLs themselves
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rlfleet-probes-") as tmp:
        scratch = Path(tmp)
        if args.only != "tests":
            rows += [run_command(probe, scratch, i) for i, probe in enumerate(COMMANDS)]
        if args.only != "commands":
            rows += run_tests(TESTS, scratch)
    rows.sort(key=lambda r: r["item"])
    for r in rows:
        mark = "pass" if r["ok"] else "FAIL"
        print(f"{r['item']:>2} {mark}  {r['what']:<62} {r['seen'][:90]}")
        print(f"          $ {r['command']}")
    passed = sum(r["ok"] for r in rows)
    print(f"{passed}/{len(rows)} probes pass")
    if args.json:
        Path(args.json).write_text(json.dumps({"probes": rows}, indent=1))
    return 0 if passed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
