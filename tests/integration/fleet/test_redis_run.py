"""The learner host's hold on a Redis run against a real redis-server that is killed and
restarted: the claim carries the run's token and is re-asserted, so a second learner under the
same name is refused even in the gap after a restart; a host whose claim another host took stops
without touching that host's keys; the config and the actor counter come back for hosts that
join after a restart."""

from __future__ import annotations

import json
import time

import pytest

from rlfleet.cli.presets import build_config
from rlfleet.config import to_dict
from rlfleet.errors import ConfigError
from rlfleet.fleet.liveness import wait_for_config
from rlfleet.fleet.redis_run import RedisRun
from rlfleet.transport.redis import RunStatus, alive_members, connect
from rlfleet.transport.redis.keys import key

CONFIG = json.dumps(to_dict(build_config("cartpole", ["model.hidden=[16]"])))


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_a_second_learner_is_refused_in_the_gap_after_a_redis_restart(redis_server):
    first = RedisRun(redis_server.url, "twin", CONFIG)
    redis_server.kill()  # no persistence: the claim, the config, every key is gone
    redis_server.start()
    # at once, before the first host beats again: the name looks free
    with pytest.raises(ConfigError, match="already running on Redis .*pick another name"):
        RedisRun(redis_server.url, "twin", CONFIG)
    assert first.beat(), "the first host keeps its run"
    client = connect(redis_server.url)
    assert alive_members(client, "twin", "learners") == [first.claim.member]
    assert first.finish("done") == ""
    assert client.keys("*") == []
    # a name whose run has ended is free again, at once
    third = RedisRun(redis_server.url, "twin", CONFIG, probation_s=0.2)
    assert third.finish("done") == ""


def test_two_learners_starting_together_get_one_run(redis_server):
    first = RedisRun(redis_server.url, "race", CONFIG, probation_s=0.5)
    with pytest.raises(ConfigError, match="already running"):
        RedisRun(redis_server.url, "race", CONFIG, probation_s=0.5)
    first.finish("done")


def test_a_host_whose_claim_was_taken_stops_and_leaves_the_others_keys(redis_server):
    run = RedisRun(redis_server.url, "taken", CONFIG, probation_s=0.2)
    other = connect(redis_server.url)
    # while this host could not reach Redis for longer than the TTL, another host took the name
    other.set(key("taken", "claim"), "live:0123456789abcdef")
    other.set(key("taken", "config"), "the other host's config")
    other.rpush(key("taken", "experience"), b"the other host's experience")
    assert _wait_for(lambda: not run.beat(), 5.0), "the lost claim is noticed"
    assert "another learner host took run 'taken'" in (run.lost or "")
    run.request_stop("interrupted")  # what the launcher's shutdown does: must not reach Redis
    assert run.finish("run name lost") != ""
    assert other.get(key("taken", "claim")) == b"live:0123456789abcdef"
    assert other.get(key("taken", "config")) == b"the other host's config"
    assert other.llen(key("taken", "experience")) == 1
    assert RunStatus(other, "taken").stop_requested() is False, "the other run goes on"


def test_hosts_can_join_after_a_redis_restart(redis_server):
    from rlfleet.transport.redis.claim import next_actor_seq

    run = RedisRun(redis_server.url, "join", CONFIG, probation_s=0.2)
    client = connect(redis_server.url)
    assert [next_actor_seq(client, "join") for _ in range(3)] == [1, 2, 3]
    time.sleep(0.5)  # a few beats: the host has seen actor number 3
    redis_server.kill()
    redis_server.start()
    joining = connect(redis_server.url, wait=10.0)
    config = wait_for_config(joining, "join", wait_s=5.0)  # `rlfleet actor` after the restart
    assert config.model.hidden == (16,)
    assert next_actor_seq(joining, "join") == 4, "actor numbers never repeat"
    assert alive_members(joining, "join", "learners") == [run.claim.member]
    assert run.finish("done") == ""


def test_actor_numbers_wait_for_the_runs_config(redis_server):
    from rlfleet.transport.redis.claim import next_actor_seq

    client = connect(redis_server.url)
    assert next_actor_seq(client, "nocfg") is None  # restarted, not re-published yet
    client.set(key("nocfg", "config"), CONFIG)
    assert next_actor_seq(client, "nocfg") == 1


def test_a_server_started_for_the_run_alone_skips_the_probation(redis_server, tmp_path):
    from rlfleet.fleet.redis_run import open_redis_run
    from rlfleet.transport.redis.claim import PROBATION_S

    config = build_config("cartpole", ["model.hidden=[16]", "transport.kind=redis"])
    shared = open_redis_run(config, redis_server.url, str(tmp_path / "shared"), CONFIG)
    private = open_redis_run(
        config, redis_server.url, str(tmp_path / "private"), CONFIG, private=True
    )
    try:
        assert shared.claim.probation_s == PROBATION_S > 0
        assert private.claim.probation_s == 0.0
    finally:
        assert shared.finish("done") == "" and private.finish("done") == ""
