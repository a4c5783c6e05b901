"""netsim behind BatchedEnv: same-step autoreset over the compiled engine, against the engine
stepped by hand with Gymnasium's NEXT_STEP semantics."""

from __future__ import annotations

import numpy as np

from rlfleet.envs import make_vector_env
from rlfleet.envs.netsim import ENV_ID
from rlfleet.envs.netsim.batched import NetSimBatched
from rlfleet.envs.netsim.vector import NetSimVectorEnv

KW = {"scenario": "aws_korea_to_china", "duration_s": 1.0}  # 10 windows per episode


def test_make_vector_env_routes_netsim_to_the_compiled_engine_and_falls_back():
    venv = make_vector_env(ENV_ID, 3, seed=0, env_kwargs=KW)
    assert isinstance(venv, NetSimBatched)
    assert venv.obs_shape == (220,) and venv.num_actions == 5
    venv.close()
    event = make_vector_env(ENV_ID, 2, seed=0, env_kwargs={**KW, "compact": True})
    assert not isinstance(event, NetSimBatched)  # compact observations: event engine
    event.close()


def test_same_step_autoreset_matches_next_step_engine():
    rng = np.random.default_rng(0)
    batched = NetSimBatched(2, seed=5, env_id=ENV_ID, **KW)
    reference = NetSimVectorEnv(2, **KW)
    obs = batched.reset()
    ref_obs, _ = reference.reset(seed=5)
    np.testing.assert_array_equal(obs, ref_obs)
    episodes = 0
    since_reset = 0
    for _ in range(35):
        actions = rng.integers(0, 5, size=2)
        step = batched.step(actions)
        ref_obs, ref_rew, _, ref_trunc, _ = reference.step(actions)
        np.testing.assert_array_equal(step.next_obs, ref_obs)
        np.testing.assert_allclose(step.reward, ref_rew.astype(np.float32))
        np.testing.assert_array_equal(step.truncated, ref_trunc)
        since_reset += 1
        if ref_trunc.any():
            episodes += int(ref_trunc.sum())
            assert np.isfinite(step.episode_returns[ref_trunc]).all()
            assert (step.episode_lengths[ref_trunc] == since_reset).all()
            since_reset = 0
            # the reference resets on its next step (action ignored); the adapter already did
            ref_obs, ref_rew, _, _, _ = reference.step(np.zeros(2, np.int64))
            assert (ref_rew[ref_trunc] == 0).all()
            np.testing.assert_array_equal(step.obs[ref_trunc], ref_obs[ref_trunc])
            # bring the reference back in step for the envs that did not end
            assert ref_trunc.all(), "equal-length episodes end together here"
        else:
            np.testing.assert_array_equal(step.obs, step.next_obs)
    assert episodes >= 4
    batched.close()
