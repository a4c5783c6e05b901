"""Bad input on the command line gets a clear message and exit code 2, before anything starts."""

from __future__ import annotations

import pytest

from rlfleet.cli.main import main


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["train", "cartpol"], "unknown preset 'cartpol'"),
        (["train", "cartpole", "--set", "learner.lrr=1"], "unknown config key learner.lrr"),
        (["train", "cartpole", "--set", "env.id=CartPol-v1"], "CartPole-v1"),
        (["train", "cartpole", "--set", "env.id=Pendulum-v1"], "Ape-X DQN needs discrete actions"),
        (["train", "--resume", "/nonexistent/run"], "no config.toml"),
        (["bench", "nosuch"], "unknown benchmark 'nosuch'"),
        (["plot", "/nonexistent/run"], "no metrics.csv"),
        (["train", "cartpole", "--transport", "redis"], "no Redis URL was given"),
        (["train", "cartpole", "--set", "transport.kind=pigeon"], "valid: local, redis"),
        (["train", "cartpole", "--redis", "http://h:1/0"], "valid: redis://, rediss://"),
        (["train", "--redis", "redis://127.0.0.1:1/0", "--run", "a b"], "not a valid key part"),
        # host commands refuse a bad run name before trying to connect (port 1: nothing listens)
        (["actor", "--redis", "redis://127.0.0.1:1/0", "--run", "a:b"], "not a valid key part"),
        (["evaluator", "--redis", "redis://127.0.0.1:1/0", "--run", "a:b"], "not a valid key part"),
        (["replay", "--redis", "redis://127.0.0.1:1/0", "--run", "a:b"], "not a valid key part"),
        (["learner", "cartpole", "--redis", "redis://127.0.0.1:1/0"], "needs --run NAME"),
        (["actor", "--run", "x"], "needs --redis URL"),
    ],
)
def test_bad_input_exits_2_with_a_message(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RLFLEET_REDIS_URL", raising=False)
    assert main(argv) == 2
    assert needle in capsys.readouterr().err


def test_resuming_a_run_already_at_its_budget_names_the_budget(capsys, tmp_path):
    """Nothing starts (no actor would find the learner's parameters before it stopped)."""
    from rlfleet.agents.common.learner import LearnerShell
    from rlfleet.agents.registry import spec_of
    from rlfleet.cli.presets import build_config
    from rlfleet.config import dumps_toml, to_dict
    from rlfleet.envs.spec import probe_env
    from rlfleet.transport.ports import RoleEnds

    config = build_config("impala-cartpole", ["model.hidden=[8]", "run.total_env_steps=1000"])
    (tmp_path / "config.toml").write_text(dumps_toml(to_dict(config)))
    core = spec_of(config).make_learner(config, probe_env(config.env.id), 0, RoleEnds())
    core.counters.env_steps = 1200
    LearnerShell(core, config, tmp_path, params=None, link=None, inbox=None).save()
    assert main(["train", "--resume", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "already has 1,200 env steps, at or past run.total_env_steps = 1,000" in err
    assert "--set run.total_env_steps=2400" in err
    assert not (tmp_path / "metrics.csv").exists()
