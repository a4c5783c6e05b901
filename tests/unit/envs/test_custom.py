"""Environments from the user's code: ``module:EnvId`` ids and ``env.entry_point``, checked
before launch, with errors that name what is wrong."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from rlfleet.cli.presets import build_config
from rlfleet.envs import make_vector_env
from rlfleet.envs.check import check_custom_env
from rlfleet.envs.custom import load_entry_point, register_entry_point
from rlfleet.envs.spec import probe_env
from rlfleet.errors import ConfigError, EnvError

pytestmark = pytest.mark.unit

GOOD = """
import gymnasium as gym
import numpy as np

class Walk(gym.Env):
    def __init__(self, n=5):
        self.n = n
        self.observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.t = 0
    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}
    def step(self, action):
        self.t += 1
        return np.full(1, self.t / self.n, np.float32), 1.0, self.t >= self.n, False, {}

def make_walk(n=5):
    return Walk(n)

def not_an_env(**kwargs):
    return "hello"

NUMBER = 3

class BadReset(Walk):
    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32)  # no info dict

gym.register(id="{name}-v0", entry_point=Walk)
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A fresh module (unique name, so registrations never collide) on sys.path."""
    name = f"userenv_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(GOOD.replace("{name}", name))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_module_colon_id_imports_the_module_and_makes_its_env(user_module):
    venv = make_vector_env(f"{user_module}:{user_module}-v0", 3, seed=0)
    assert venv.obs_shape == (1,) and venv.num_envs == 3
    obs = venv.reset()
    np.testing.assert_array_equal(obs, np.zeros((3, 1), np.float32))
    r = venv.step(np.ones(3, np.int64))
    np.testing.assert_allclose(r.next_obs[:, 0], 0.2)
    venv.close()
    spec = probe_env(f"{user_module}:{user_module}-v0")
    assert spec.num_actions == 2


def test_module_that_does_not_import_shows_its_traceback(tmp_path, monkeypatch):
    (tmp_path / "broken_env_mod.py").write_text("import gymnasium\nraise RuntimeError('boom 42')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(EnvError) as info:
        make_vector_env("broken_env_mod:X-v0", 1, 0)
    text = str(info.value)
    assert "cannot import module 'broken_env_mod'" in text
    assert "Traceback" in text and "boom 42" in text and "broken_env_mod.py" in text
    sys.modules.pop("broken_env_mod", None)


def test_missing_module_and_unregistered_id(user_module):
    with pytest.raises(EnvError, match="PYTHONPATH"):
        make_vector_env("no_such_module_xyz:X-v0", 1, 0)
    with pytest.raises(EnvError, match="registers no environment 'Nope-v0'"):
        make_vector_env(f"{user_module}:Nope-v0", 1, 0)
    with pytest.raises(EnvError, match="not of the form"):
        make_vector_env("a b:c", 1, 0)


def test_entry_point_class_and_factory_with_kwargs(user_module):
    config = build_config(
        "cartpole",
        [
            f'env.id="{user_module}-cls"',
            f'env.entry_point="{user_module}:Walk"',
            "env.kwargs={n=2}",
        ],
    )
    venv = make_vector_env(config.env.id, 2, 0, env_kwargs=config.env.kwargs)
    venv.reset()
    r = venv.step(np.zeros(2, np.int64))
    np.testing.assert_allclose(r.next_obs[:, 0], 0.5)  # n=2 reached the constructor
    venv.close()
    register_entry_point(f"{user_module}-fn", f"{user_module}:make_walk")
    assert probe_env(f"{user_module}-fn").obs_shape == (1,)


@pytest.mark.parametrize(
    "attr, message",
    [
        ("NUMBER", "is a int, not callable"),
        ("Missing", "has no 'Missing'"),
        ("not_an_env", "returned a str, not a gymnasium.Env"),
    ],
)
def test_entry_point_errors_name_what_is_wrong(user_module, attr, message):
    env_id = f"{user_module}-{attr}"
    register_entry_point(env_id, f"{user_module}:{attr}")
    with pytest.raises(EnvError, match=message):
        make_vector_env(env_id, 1, 0)


def test_entry_point_config_errors_before_anything_runs(user_module):
    with pytest.raises(ConfigError, match="already a registered environment"):
        build_config("cartpole", [f'env.entry_point="{user_module}:Walk"'])  # id CartPole-v1
    with pytest.raises(ConfigError, match="not of the form"):
        build_config("cartpole", ['env.id="Mine-v0"', 'env.entry_point="nocolon"'])
    with pytest.raises(EnvError, match="cannot import module"):
        load_entry_point("no_such_module_xyz:Env")


def test_checker_refuses_a_broken_env_and_passes_a_good_one(user_module):
    check_custom_env(f"{user_module}:{user_module}-v0")  # passes
    register_entry_point(f"{user_module}-bad", f"{user_module}:BadReset")
    with pytest.raises(EnvError, match="fails Gymnasium's env checker"):
        check_custom_env(f"{user_module}-bad")


def test_example_corridor_env_passes_the_checker(monkeypatch):
    folder = Path(__file__).resolve().parents[3] / "examples" / "custom_env"
    monkeypatch.syspath_prepend(str(folder))
    check_custom_env("corridor:Corridor-v0")
    assert probe_env("corridor:Corridor-v0").num_actions == 2
