"""train()'s config resolution (every form of source and overrides) and the API's lightness."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rlfleet.api.training import resolve_config, train
from rlfleet.cli.presets import PRESET_DIR, build_config
from rlfleet.config import to_dict
from rlfleet.errors import ConfigError

pytestmark = pytest.mark.unit


def test_every_source_form_gives_the_same_config():
    want = build_config("cartpole", ["learner.lr=0.0003"])
    by_name, name = resolve_config("cartpole", ["learner.lr=3e-4"])
    assert name == "cartpole" and to_dict(by_name) == to_dict(want)
    by_path, name = resolve_config(PRESET_DIR / "cartpole.toml", {"learner.lr": 3e-4})
    assert name == "cartpole" and to_dict(by_path) == to_dict(want)
    by_map, _ = resolve_config(to_dict(build_config("cartpole", [])), {"learner.lr": 3e-4})
    assert to_dict(by_map) == to_dict(want)
    by_obj, _ = resolve_config(build_config("cartpole", []), ["learner.lr=3e-4"])
    assert to_dict(by_obj) == to_dict(want)
    flagged, _ = resolve_config("cartpole", {"learner.lr": 3e-4}, ["learner.lr=1e-3"])
    assert flagged.learner.lr == 1e-3  # flags after overrides


def test_bad_sources_and_overrides_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'cartpol'.*cartpole"):
        resolve_config("cartpol")
    with pytest.raises(ConfigError, match="got a int"):
        resolve_config(42)
    with pytest.raises(ConfigError, match="wrap it in a list"):
        resolve_config("cartpole", "learner.lr=1")
    with pytest.raises(ConfigError, match="must look like 'section.key'"):
        resolve_config("cartpole", {"lr": 1.0})
    with pytest.raises(ConfigError, match="learner.lrr"):
        resolve_config("cartpole", {"learner.lrr": 1.0})
    with pytest.raises(ConfigError, match="actors on other hosts need the Redis transport"):
        train("cartpole", run_dir=tmp_path / "r", local_actors=0, in_process=True)
    assert not (tmp_path / "r").exists()


def test_import_rlfleet_and_its_api_names_import_no_torch():
    code = (
        "import sys, rlfleet\n"
        "assert callable(rlfleet.train) and callable(rlfleet.load_policy)\n"
        "assert callable(rlfleet.evaluate) and rlfleet.Callback and rlfleet.RunResult\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    import rlfleet

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rlfleet.nope  # noqa: B018
