"""Domain randomization of MuJoCo models: friction, body masses (with inertia) and actuator
gains reach the compiled model's arrays, scale the model's own values every episode (never
compounding), are reported in ``info`` and reproducible under the reset seed."""

from __future__ import annotations

import numpy as np
import pytest

from rlfleet.envs import make_env
from rlfleet.envs.randomize import parse_randomization
from rlfleet.errors import ConfigError

pytest.importorskip("mujoco")

TABLE = {"friction": [0.2, 0.6], "mass_scale": [0.5, 2.0, "log"], "gain_scale": [0.8, 1.2]}


def test_the_model_arrays_follow_each_episode_s_draw():
    plain = make_env("HalfCheetah-v5").unwrapped.model
    friction0, mass0 = plain.geom_friction[:, 0].copy(), plain.body_mass.copy()
    inertia0, gain0 = plain.body_inertia.copy(), plain.actuator_gainprm[:, 0].copy()
    env = make_env("HalfCheetah-v5", randomize=TABLE)
    model = env.unwrapped.model
    seen = []
    for seed in (1, None, None):
        _, info = env.reset(seed=seed)
        v = info["randomization"]
        seen.append(v)
        assert 0.2 <= v["friction"] <= 0.6 and 0.5 <= v["mass_scale"] <= 2.0
        np.testing.assert_allclose(model.geom_friction[:, 0], v["friction"])
        # scales apply to the model's own values, not to the previous episode's
        np.testing.assert_allclose(model.body_mass, mass0 * v["mass_scale"])
        np.testing.assert_allclose(model.body_inertia, inertia0 * v["mass_scale"])
        np.testing.assert_allclose(model.actuator_gainprm[:, 0], gain0 * v["gain_scale"])
    assert seen[0] != seen[1] != seen[2]
    *_, step_info = env.step(np.zeros(6, np.float32))
    assert step_info["randomization"] == seen[2]
    _, again = env.reset(seed=1)
    assert again["randomization"] == seen[0], "reproducible under the reset seed"
    # a parameter that is not drawn keeps the model's own value
    partial = make_env("Hopper-v5", randomize={"gain_scale": 1.5})
    partial.reset(seed=0)
    hopper = make_env("Hopper-v5").unwrapped.model
    m = partial.unwrapped.model
    np.testing.assert_allclose(m.geom_friction[:, 0], hopper.geom_friction[:, 0])
    np.testing.assert_allclose(m.body_mass, hopper.body_mass)
    np.testing.assert_allclose(m.actuator_gainprm[:, 0], hopper.actuator_gainprm[:, 0] * 1.5)
    assert friction0.shape == (plain.ngeom,) and gain0.shape == (plain.nu,)


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({"mass": [1, 2]}, "no parameter 'mass'; valid: friction, mass_scale, gain_scale"),
        ({"mass_scale": [0, 2]}, "a mass_scale must be > 0"),
        ({"friction": [-0.1, 0.5]}, "a friction must be >= 0"),
    ],
)
def test_bad_mujoco_tables_name_the_problem(table, match):
    with pytest.raises(ConfigError, match=match):
        parse_randomization("HalfCheetah-v5", table)
