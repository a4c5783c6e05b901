"""An actor of ``rlfleet actor`` whose host supervisor was killed: it still ends once the run's
learner has been gone for ``transport.learner_grace_s`` (it watches the learner's claim through
its status link), instead of acting for ever. The learner host is played by the test."""

from __future__ import annotations

import json
import threading
import time

import numpy as np

from rlfleet.agents import registry
from rlfleet.cli.presets import build_config
from rlfleet.config import to_dict
from rlfleet.envs.spec import probe_env
from rlfleet.fleet import bootstrap
from rlfleet.fleet.addresses import FleetAddresses
from rlfleet.models.params import param_count
from rlfleet.transport.redis import Heartbeat, RedisParams, connect
from rlfleet.transport.redis.keys import experience_key, key

RUN = "orphan"


def test_an_actor_without_its_supervisor_ends_when_the_learner_host_dies(redis_server):
    config = build_config(
        "cartpole",
        [
            "model.hidden=[16]",
            "env.envs_per_actor=2",
            "actor.push_size=8",
            "transport.kind=redis",
            "transport.learner_grace_s=2",
        ],
    )
    client = connect(redis_server.url)
    config_json = json.dumps(to_dict(config))
    client.set(key(RUN, "config"), config_json)
    learner = Heartbeat(client, RUN, "launcher-test", group="learners")
    learner.beat(force=True)
    net = registry.spec_of(config).make_network(config, probe_env("CartPole-v1"))
    params = np.zeros(param_count(net), np.float32)
    RedisParams(client, RUN).publish(params, 1)

    # the actor process of `rlfleet actor`, with no supervisor around it (it was SIGKILLed)
    addresses = FleetAddresses.remote(redis_server.url, RUN)
    actor = threading.Thread(
        target=bootstrap.actor_main, args=(config_json, addresses, 0, 1, 7, "r1"), daemon=True
    )
    actor.start()
    deadline = time.monotonic() + 30
    while client.llen(experience_key(RUN)) < 2 and time.monotonic() < deadline:
        learner.beat()  # the learner host is alive
        time.sleep(0.1)
    assert client.llen(experience_key(RUN)) >= 2, "the actor acts and pushes"

    learner.leave()  # the learner host dies: no stop flag is ever set
    died = time.monotonic()
    actor.join(timeout=15)
    assert not actor.is_alive(), "the orphaned actor never ended"
    assert time.monotonic() - died >= 2.0, "not before the grace period"
