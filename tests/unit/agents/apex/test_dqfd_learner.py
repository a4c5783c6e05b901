"""DQfD / Ape-X DQfD inside the Ape-X learner: stores, batch composition through the learner's
own sampling path, pre-training, config and the ``rlfleet record`` command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rlfleet.agents.apex.learner import ApexLearner
from rlfleet.agents.apex.stores import MixedStore, agent_fields
from rlfleet.agents.common.replay_store import ReplayStore
from rlfleet.cli.main import main
from rlfleet.cli.presets import build_config
from rlfleet.envs.demonstrators import mountain_car_pump
from rlfleet.envs.record import record_episodes
from rlfleet.envs.spec import EnvSpec, probe_env
from rlfleet.errors import ConfigError
from rlfleet.math.dqfd import expert_batch_split
from rlfleet.replay import load_demos

SMALL = [
    "model.hidden=[16, 16]",
    "replay.capacity=3000",
    "replay.learning_starts=0",
    "learner.batch_size=32",
]


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("demos") / "mc.npz"
    record_episodes("MountainCar-v0", mountain_car_pump, 3, seed=0, path=path, source="test")
    return path


def config_for(mode: str, demo_file: Path, *extra: str):
    return build_config(
        "mountaincar", [*SMALL, f'dqfd.mode="{mode}"', f'dqfd.demos="{demo_file}"', *extra]
    )


def make_learner(config) -> tuple[ApexLearner, EnvSpec]:
    env = probe_env(config.env.id)
    return ApexLearner(config, env, seed=0), env


def agent_batch(learner: ApexLearner, env: EnvSpec, n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    batch = {}
    for name, spec in agent_fields(learner.config, env.obs_shape, env.obs_dtype).items():
        shape = (n, *spec.shape)
        if name == "action":
            batch[name] = rng.integers(0, env.num_actions, n).astype(np.int64)
        else:
            batch[name] = rng.normal(size=shape).astype(spec.dtype)
    return batch


@pytest.mark.parametrize(("batch_size", "fraction"), [(32, 0.25), (64, 0.25), (30, 0.1), (7, 0.5)])
def test_every_learner_batch_has_exactly_the_configured_expert_share(
    demo_file, batch_size, fraction
):
    config = config_for(
        "apex-dqfd",
        demo_file,
        f"learner.batch_size={batch_size}",
        f"dqfd.expert_fraction={fraction}",
    )
    learner, env = make_learner(config)
    assert isinstance(learner.store, MixedStore)
    learner.store.add(agent_batch(learner, env, 500, 1), np.random.default_rng(2).random(500) + 0.1)
    n_agent, n_expert = expert_batch_split(batch_size, fraction)
    assert n_expert == round(batch_size * fraction)
    for _ in range(50):
        token, tensors, weights = learner.to_batch(learner.store.draw(batch_size, 0.4))
        is_demo = tensors["is_demo"].numpy()
        assert len(is_demo) == batch_size and weights.shape == (batch_size,)
        assert int(is_demo.sum()) == n_expert
        assert not is_demo[:n_agent].any() and is_demo[n_agent:].all()
        learner.learn((token, tensors, weights))  # priorities flow back to both replays


def test_dqfd_keeps_demonstrations_in_the_reserved_region(demo_file):
    demos = load_demos(demo_file)
    config = config_for("dqfd", demo_file)
    learner, env = make_learner(config)
    store = learner.store
    assert isinstance(store, ReplayStore) and store.num_demos == demos.num_steps
    # agents' data must carry the 1-step target for DQfD's J_DQ term
    assert {"reward_1", "discount_1", "next_obs_1"} <= set(learner.fields)
    for i in range(10):  # far more agent items than the ring holds: FIFO eviction
        store.add(agent_batch(learner, env, 500, i), np.full(500, 0.5))
    assert store.num_demos == demos.num_steps
    assert len(store) == config.replay.capacity
    kept = store.replay.get(np.arange(demos.num_steps))
    np.testing.assert_array_equal(kept["obs"], demos.obs)
    assert kept["is_demo"].all()
    drawn = store.draw(256, 0.4)
    agent_rows = ~drawn.fields["is_demo"]
    assert agent_rows.any() and not drawn.fields["imitate"][agent_rows].any()
    assert (drawn.fields["episode"][agent_rows] == -1).all()


def test_demonstration_priority_bonus_makes_demos_more_likely(demo_file):
    config = config_for(
        "dqfd", demo_file, "dqfd.demo_priority_eps=1.0", "replay.priority_eps=0.001"
    )
    learner, env = make_learner(config)
    store = learner.store
    n_demo = store.num_demos
    # demonstrations and agent items with the same |TD| = 0: only their eps differs
    gens = store.replay.generations(np.arange(n_demo))
    store.replay.update_priorities(np.arange(n_demo), np.zeros(n_demo), gens)
    store.add(agent_batch(learner, env, n_demo, 3), np.zeros(n_demo))
    share = np.mean([store.draw(64, 0.4).fields["is_demo"].mean() for _ in range(20)])
    # p_demo / p_agent = (1.0 / 0.001) ** alpha: demonstrations dominate equal-size halves
    assert share > 0.95


def test_pretraining_imitates_the_demonstrator(demo_file):
    demos = load_demos(demo_file)
    config = config_for("dqfd", demo_file, "dqfd.pretrain_updates=300", "learner.lr=0.003")
    learner, _ = make_learner(config)
    obs = torch.from_numpy(demos.obs)

    def agreement() -> float:
        with torch.no_grad():
            greedy = learner.update.net(obs).argmax(dim=1).numpy()
        return float((greedy == demos.action).mean())

    before = agreement()
    notices: list[str] = []
    learner.before_serving(notices.append)
    assert learner.counters.pretrain_updates == 300 == learner.counters.updates
    assert notices[-1] == "pre-training on demonstrations: update 300 of 300"
    # the pump policy switches on the sign of the velocity: states near v = 0 are the hard part
    assert agreement() >= max(0.65, before + 0.25)
    learner.before_serving(notices.append)  # resumed learners do not pre-train twice
    assert learner.counters.updates == 300


def test_apex_dqfd_defaults_follow_the_paper(demo_file):
    d = config_for("apex-dqfd", demo_file).dqfd
    assert d.is_transformed and d.resolved("pretrain_updates") == 0
    assert d.resolved("margin") == pytest.approx(0.999**0.5)
    assert d.resolved("tc_weight") == 1.0 and d.resolved("one_step_weight") == 0.0
    d = config_for("dqfd", demo_file).dqfd
    assert not d.is_transformed and d.resolved("margin") == 0.8
    assert d.resolved("l2_weight") == 1e-5 and d.resolved("one_step_weight") == 1.0


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ('dqfd.mode="dqfd2"', "valid: off, dqfd, apex-dqfd"),
        ("dqfd.expert_fraction=1.5", "expert_fraction"),
        ('dqfd.transformed="yes"', "valid: auto, on, off"),
    ],
)
def test_bad_dqfd_config_names_the_valid_values(override, match):
    with pytest.raises(ConfigError, match=match):
        build_config("mountaincar", ['dqfd.demos="x.npz"', override])


def test_dqfd_without_a_demo_file_is_refused():
    with pytest.raises(ConfigError, match="needs dqfd.demos"):
        build_config("mountaincar", ['dqfd.mode="dqfd"'])


def test_record_command_writes_a_valid_file(tmp_path, capsys):
    out = tmp_path / "d.npz"
    argv = ["record", "MountainCar-v0", "--policy", "rlfleet.envs.demonstrators:mountain_car_pump"]
    assert main([*argv, "--episodes", "2", "--seed", "5", "--out", str(out)]) == 0
    demos = load_demos(out, expect_env_id="MountainCar-v0", expect_num_actions=3)
    assert demos.num_episodes == 2 and demos.episode_seeds == [5, 6]
    assert demos.source == "script:rlfleet.envs.demonstrators:mountain_car_pump"
    assert "2 episodes" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("nocolon", "MODULE:FUNCTION"),
        ("rlfleet.envs.demonstrators:nope", "mountain_car_pump"),
        ("no_such_module_xyz:f", "cannot import"),
    ],
)
def test_record_bad_policy_is_named(tmp_path, capsys, spec, match):
    argv = ["record", "MountainCar-v0", "--policy", spec, "--out", str(tmp_path / "x.npz")]
    assert main(argv) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()
