"""The CTC recognizer as a sequence family: actors read images column by column (groups share
one image, greedy first), the learner's one-pass path log-probabilities equal the actor's, the
CTC phase lowers its loss, and the config refuses a height that is not the recognizer's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlfleet.agents.registry import config_from_dict
from rlfleet.agents.scst.acting import ScstActing
from rlfleet.agents.scst.learner import ScstLearner
from rlfleet.agents.spec import ActorSlot
from rlfleet.envs.make import make_vector_env
from rlfleet.envs.spec import EnvSpec
from rlfleet.errors import ConfigError
from rlfleet.models.params import flatten_into, param_count
from rlfleet.transport.codec import decode as decode_message

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_torch_thread")]


WORDS = ["cat", "cab", "bat", "tab", "act", "tack", "back", "abba", "bab", "tat"]


def make_config(tmp_path, phase="scst", height=32, **learner):
    path = tmp_path / "words.txt"
    path.write_text("\n".join(WORDS) + "\n")
    return config_from_dict(
        {
            "run": {"algorithm": "scst"},
            "env": {"id": "OCR/Words-v0", "envs_per_actor": 6,
                    "kwargs": {"words": str(path), "height": height, "width_factor": 4,
                               "test_images": 4, "held_out_fraction": 0.2}},
            "scst": {"phase": phase, "samples": 2, "dev_words": 4},
            "learner": {"batch_size": 2, **learner},
        }
    )  # fmt: skip


def test_actor_path_log_probs_are_what_the_learner_recomputes(tmp_path):
    config = make_config(tmp_path)
    venv = make_vector_env(config.env.id, 6, 0, env_kwargs=config.env.kwargs)
    env = EnvSpec.of(venv)
    learner = ScstLearner(config, env, 0)
    acting = ScstActing(config, env, ActorSlot(0, 1, 0), 0)
    flat = np.empty(param_count(learner.net), np.float32)
    flatten_into(learner.net, flat)
    acting.load_params(flat, 0)
    obs = venv.reset()
    while True:
        step = venv.step(acting.act(obs))
        out = acting.observe(step)
        if out:
            break
        obs = step.obs
    a = decode_message(out[0]).arrays
    assert (a["row"].reshape(2, 3) == a["row"][::3, None]).all()
    assert (a["image"][0::3] == a["image"][1::3]).all()
    mask = np.arange(a["tokens"].shape[1])[None] < a["length"][:, None]
    assert (a["log_prob"][~mask] == 0).all() and (a["log_prob"][mask] <= 0).all()
    sample = np.ones(6, bool)
    sample[::3] = False
    width = int(a["length"][sample].max())
    sources = {k: a[k][0::3] for k in ("image", "width")}
    logp, _ = learner.family.sample_log_probs(
        learner.net, sources, 3, a["tokens"][sample][:, :width], mask[sample][:, :width]
    )
    m = mask[sample][:, :width]
    np.testing.assert_allclose(
        logp.detach().numpy()[m], a["log_prob"][sample][:, :width][m], atol=1e-4
    )
    # the greedy row's reward is -CER of its collapsed argmax path, within [-1, 0]
    assert ((a["reward"] >= -1) & (a["reward"] <= 0)).all()
    before = [p.detach().clone() for p in learner.net.parameters()]
    learner.learn({**a, "version": np.zeros(6, np.int64)})
    changed = [not torch.equal(b, p) for b, p in zip(before, learner.net.parameters(), strict=True)]
    assert any(changed) or learner._stats["advantage_abs"] == [0.0]


def test_ctc_updates_lower_the_loss(tmp_path):
    config = make_config(tmp_path, phase="xe", batch_size=8, lr=0.01)
    venv = make_vector_env(config.env.id, 1, 0, env_kwargs=config.env.kwargs)
    learner = ScstLearner(config, EnvSpec.of(venv), 0)
    for _ in range(16):
        learner.prefetch_once()
        learner.learn(learner.batches.get(0.1))
    losses = learner._stats["loss"]
    assert np.mean(losses[-4:]) < 0.8 * np.mean(losses[:4])
    assert learner.counters.env_steps > 0


def test_height_must_be_the_recognizers(tmp_path):
    from rlfleet.agents.scst.spec import prepare

    config = make_config(tmp_path, height=36)
    with pytest.raises(ConfigError, match="set env.kwargs.height = 32"):
        prepare(config)


def test_xe_mix_adds_the_ctc_loss_on_the_groups_images(tmp_path):
    config = make_config(tmp_path)
    config.scst.xe_mix = 1.0
    venv = make_vector_env(config.env.id, 6, 0, env_kwargs=config.env.kwargs)
    env = EnvSpec.of(venv)
    learner = ScstLearner(config, env, 0)
    acting = ScstActing(config, env, ActorSlot(0, 1, 0), 0)
    obs = venv.reset()
    while not (out := acting.observe(step := venv.step(acting.act(obs)))):
        obs = step.obs
    a = decode_message(out[0]).arrays
    learner.learn({**a, "version": np.zeros(6, np.int64)})
    assert len(learner._stats["xe_loss"]) == 1 and np.isfinite(learner._stats["xe_loss"][0])
