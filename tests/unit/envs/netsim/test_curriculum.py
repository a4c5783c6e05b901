"""The sampler curriculum: paths where the agent trails the classic schemes are drawn more."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlfleet.envs.netsim.curriculum import Curriculum, path_score
from rlfleet.envs.netsim.scenarios.samplers import SAMPLER_PARAMS, sample_scenario
from rlfleet.envs.netsim.vector import NetSimVectorEnv
from rlfleet.errors import ConfigError

pytestmark = pytest.mark.unit

PATHS = SAMPLER_PARAMS["random_traces_0_5"].traces


def test_score_and_weights_by_hand() -> None:
    assert path_score(0.5, 90.0, 30.0) == pytest.approx(math.log(0.5) - 0.2 * math.log(3.0))
    assert path_score(1.0, 10.0, 30.0) == 0.0  # below the base delay counts as no queueing
    c = Curriculum(PATHS, floor=0.4, temperature=0.5, reference=dict.fromkeys(PATHS, 0.0))
    np.testing.assert_allclose(c.weights(), 1 / 6)
    c.record(PATHS[0], 0.25, 30.0, 30.0)  # trails by log 4
    c.record(PATHS[1], 1.0, 30.0, 30.0)  # level with the classics
    gaps = np.array([math.log(4), 0, 0, 0, 0, 0])
    soft = np.exp(gaps / 0.5) / np.exp(gaps / 0.5).sum()
    np.testing.assert_allclose(c.weights(), 0.4 / 6 + 0.6 * soft)
    c.record(PATHS[0], 1.0, 30.0, 30.0)  # EMA (coeff 0.1) moves towards the new score
    assert c.agent[PATHS[0]] == pytest.approx(0.9 * math.log(0.25))
    with pytest.raises(ConfigError):
        Curriculum(PATHS, floor=2.0)


def test_weights_bias_the_sampler_and_the_vector_env_records_episodes() -> None:
    rng = np.random.default_rng(0)
    w = np.array([0.9, 0.02, 0.02, 0.02, 0.02, 0.02])
    names = [sample_scenario("random_traces_0_5", rng, w).name.split(":")[1] for _ in range(300)]
    assert names.count(PATHS[0]) > 200
    v = NetSimVectorEnv(4, scenario="random_traces_0_5", duration_s=0.5, curriculum=True)
    v.curriculum._reference = dict.fromkeys(PATHS, 0.0)  # skip the classic runs
    v.reset(seed=0)
    for _ in range(8):
        v.step(np.full(4, 4))
    assert v.curriculum.agent  # finished episodes were scored
    assert set(v.curriculum.agent) <= set(PATHS)
    with pytest.raises(ConfigError, match="curriculum = true needs one sampler"):
        NetSimVectorEnv(2, scenario="buffer_bdp", curriculum=True)
