"""The SCST agent against fakes: actors decode lockstep groups (greedy first, samples after)
and their recorded log-probabilities are what the learner recomputes by teacher forcing; the
learner's XE and SCST updates change the parameters; stale batches are discarded; the config
refuses what it cannot run."""

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
from tests.fakes import FakeInbox

pytestmark = pytest.mark.unit

WORDS = ["cat K AE T", "cab K AE B", "bat B AE T", "tab T AE B", "act AE K T", "tack T AE K",
         "back B AE K", "abba AE B AH", "bab B AE B", "tat T AE T", "kat K AE T", "cat K AH T"]  # fmt: skip


def make_config(tmp_path, phase="scst", **learner):
    path = tmp_path / "tiny.tsv"
    path.write_text("".join(f"{w.split()[0]}\t{' '.join(w.split()[1:])}\n" for w in WORDS))
    return config_from_dict(
        {
            "run": {"algorithm": "scst"},
            "env": {"id": "Seq/G2P-v0", "envs_per_actor": 6,
                    "kwargs": {"corpus": str(path), "dev_fraction": 0.2, "test_fraction": 0.1}},
            "model": {"embed": 8, "hidden": 16},
            "scst": {"phase": phase, "samples": 2, "dev_words": 0},
            "learner": {"batch_size": 2, **learner},
        }
    )  # fmt: skip


def decode_batch(config, seed=0):
    """One actor batch, acted with the learner's parameters; returns the message and learner."""
    venv = make_vector_env(
        config.env.id, config.env.envs_per_actor, seed, env_kwargs=config.env.kwargs
    )
    env = EnvSpec.of(venv)
    learner = ScstLearner(config, env, seed)
    acting = ScstActing(config, env, ActorSlot(0, 1, 0), seed)
    flat = np.empty(param_count(learner.net), np.float32)
    flatten_into(learner.net, flat)
    acting.load_params(flat, 0)
    obs = venv.reset()
    while True:
        step = venv.step(acting.act(obs))
        out = acting.observe(step)
        if out:
            return decode_message(out[0]), learner
        obs = step.obs


def test_groups_share_a_source_and_start_with_the_greedy_decode(tmp_path):
    config = make_config(tmp_path)
    message, _ = decode_batch(config)
    a = message.arrays
    assert len(a["row"]) == 6 and (a["row"].reshape(2, 3) == a["row"][::3, None]).all()
    assert message.meta["env_steps"] == int(a["length"].sum())
    mask = np.arange(a["tokens"].shape[1])[None] < a["length"][:, None]
    assert (a["log_prob"][~mask] == 0).all() and (a["log_prob"][mask] < 0).all()


def test_actor_log_probs_are_what_the_learner_recomputes(tmp_path):
    config = make_config(tmp_path)
    message, learner = decode_batch(config)
    a = message.arrays
    learner.learner_version = 0
    batch = {**a, "version": np.zeros(len(a["row"]), np.int64)}
    before = [p.detach().clone() for p in learner.net.parameters()]
    # the learner recomputes every sample's log-probabilities by teacher forcing on a padded
    # batch; they must equal the actor's token-by-token ones (same parameters, version 0)
    captured = {}
    original = torch.log_softmax

    def spy(x, dim):
        out = original(x, dim=dim)
        if x.dim() == 3:
            captured["logp"] = out.detach()
        return out

    torch.log_softmax = spy
    try:
        learner.learn(batch)
    finally:
        torch.log_softmax = original
    sample = np.ones(6, bool)
    sample[::3] = False
    tokens = torch.from_numpy(a["tokens"][sample].astype(np.int64))[:, : captured["logp"].shape[1]]
    got = captured["logp"].gather(2, tokens.unsqueeze(2)).squeeze(2).numpy()
    mask = np.arange(got.shape[1])[None] < a["length"][sample][:, None]
    np.testing.assert_allclose(got[mask], a["log_prob"][sample][:, : got.shape[1]][mask], atol=1e-4)
    assert any(not torch.equal(b, p) for b, p in zip(before, learner.net.parameters(), strict=True))
    assert learner._stats["stale_fraction"] == [0.0]


def test_collect_discards_groups_beyond_max_lag_and_batches_the_rest(tmp_path):
    config = make_config(tmp_path)
    message, learner = decode_batch(config)
    learner.counters.version = 5  # max_lag 2: version 0 is too old
    learner.collect_once(FakeInbox([message]))
    assert learner.counters.discarded == 2 and learner.batches.qsize() == 0
    message.meta["policy_version"] = 4
    learner.collect_once(FakeInbox([message]))
    batch = learner.batches.get(0.1)
    assert batch is not None and len(batch["row"]) == 6 and (batch["version"] == 4).all()


def test_xe_updates_lower_the_loss(tmp_path):
    config = make_config(tmp_path, phase="xe", batch_size=8, lr=0.02)
    venv = make_vector_env(config.env.id, 1, 0, env_kwargs=config.env.kwargs)
    learner = ScstLearner(config, EnvSpec.of(venv), 0)
    for _ in range(20):
        learner.prefetch_once()
        learner.learn(learner.batches.get(0.1))
    losses = learner._stats["loss"]
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    assert learner.counters.env_steps > 0


def test_config_refusals(tmp_path):
    config = make_config(tmp_path)
    assert config.env.kwargs["group_size"] == 3
    bad = {"run": {"algorithm": "scst"}, "env": {"id": "CartPole-v1"}}
    with pytest.raises(ConfigError, match="not one"):
        config_from_dict(bad)
    bad = {"run": {"algorithm": "scst"}, "env": {"id": "Seq/G2P-v0", "kwargs": {"group_size": 2}}}
    with pytest.raises(ConfigError, match="must be 1 \\+ scst.samples = 5"):
        config_from_dict(bad)
    bad = {"run": {"algorithm": "scst"}, "env": {"id": "Seq/G2P-v0", "envs_per_actor": 7}}
    with pytest.raises(ConfigError, match="multiple of 1 \\+ scst.samples"):
        config_from_dict(bad)
    with pytest.raises(ConfigError, match="valid: greedy, mean_others"):
        config_from_dict({"run": {"algorithm": "scst"}, "scst": {"baseline": "critic"}})
