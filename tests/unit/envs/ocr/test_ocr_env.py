"""The word renderer (determinism under a seed), the task's train / held-out split, and the
lockstep OCR environment's contract and reward."""

from __future__ import annotations

import numpy as np
import pytest

from rlfleet.envs.make import make_vector_env
from rlfleet.envs.ocr.render import HELD_OUT_FONTS, TRAIN_FONTS, Renderer
from rlfleet.envs.ocr.task import OcrOptions, load_task
from rlfleet.errors import ConfigError

pytestmark = pytest.mark.unit

WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta", "zeta", "iota"]


@pytest.fixture()
def words_file(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("\n".join(WORDS + ["with-dash", "x", "toolongwordhere"]) + "\n")
    return str(path)


def test_renderer_is_deterministic_under_a_seed_and_differs_across_seeds():
    r = Renderer(32, 192, TRAIN_FONTS)
    a, wa = r.render(WORDS, 3, np.arange(10))
    b, wb = r.render(WORDS, 3, np.arange(10))
    c, _ = r.render(WORDS, 4, np.arange(10))
    assert a.dtype == np.uint8 and a.shape == (10, 32, 192)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(wa, wb)
    assert (a != c).any()
    # one image of a stream does not depend on the others rendered with it
    single, _ = r.render(WORDS[4:5], 3, np.array([4]))
    np.testing.assert_array_equal(single[0], a[4])
    assert ((wa >= 4) & (wa <= 192)).all()
    assert all((a[i, :, wa[i] :] == 0).all() for i in range(10))


def test_train_and_held_out_fonts_and_words_are_disjoint(words_file):
    assert not set(TRAIN_FONTS) & set(HELD_OUT_FONTS)
    task = load_task(OcrOptions.parse({"words": words_file, "held_out_fraction": 0.3}))
    assert sorted(task.train_words + task.test_words) == sorted(WORDS)
    assert not set(task.train_words) & set(task.test_words)
    assert len(task.test_words) == 3
    again = load_task(
        OcrOptions.parse({"words": words_file, "held_out_fraction": 0.3, "split_seed": 0})
    )
    assert again.test_words == task.test_words


def test_bad_options_name_the_valid_ones(words_file):
    with pytest.raises(ConfigError, match="valid: words"):
        OcrOptions.parse({"font": "x"})
    with pytest.raises(ConfigError, match="multiple of 4"):
        OcrOptions.parse({"height": 30})
    with pytest.raises(ConfigError, match="no such file"):
        load_task(OcrOptions.parse({"words": words_file + ".missing"}))


def test_lockstep_episodes_reward_minus_cer(words_file):
    kwargs = {"words": words_file, "held_out_fraction": 0.3, "group_size": 2, "test_images": 6}
    env = make_vector_env("OCR/Words-v0", 4, seed=1, env_kwargs=kwargs)
    task, lay = env.task, env.layout
    obs = env.reset()
    rows, widths = lay.row(obs), lay.image_width(obs)
    assert (rows[0::2] == rows[1::2]).all()  # groups share an image
    columns = task.columns(widths)
    # row 0 writes its word exactly (letters then blanks), the others write blanks only
    labels, lengths = task.train_labels[rows], task.train_label_len[rows]
    step = None
    for t in range(int(columns.max())):
        actions = np.zeros(4, np.int64)
        if t < lengths[0]:
            actions[0] = labels[0, t]
        step = env.step(actions)
        if t < columns.max() - 1:
            assert not step.terminated.any()
    assert step.terminated.all()
    np.testing.assert_allclose(step.reward, [0.0, -1.0, -1.0, -1.0])
    np.testing.assert_array_equal(step.episode_lengths, columns)
    assert lay.t(step.obs).max() == 0  # already the next batch


def test_evaluation_walks_the_held_out_set(words_file):
    kwargs = {"words": words_file, "held_out_fraction": 0.3, "test_images": 5}
    env = make_vector_env("OCR/Words-v0", 3, seed=0, env_kwargs=kwargs, training=False)
    obs = env.reset()
    images, widths, rows = env.task.test_set
    np.testing.assert_array_equal(env.layout.row(obs), rows[:3])
    np.testing.assert_array_equal(env.layout.images(obs), images[:3])
    assert set(env.task.test_words[r] for r in rows) <= set(env.task.test_words)
