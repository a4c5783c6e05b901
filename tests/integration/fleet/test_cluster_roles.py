"""What a Ray actor of ``--ray`` runs, without Ray: the redis-server the learner's actor starts
for a run (password from a file that is gone once the server is up, stopped with the actor), and
a role's arguments as JSON."""

from __future__ import annotations

import os
import shutil

import pytest

from rlfleet.fleet.addresses import FleetAddresses
from rlfleet.fleet.cluster.roles import RoleActor, decode_args, encode_args

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed"),
]


def test_the_learner_actor_starts_a_private_redis_and_stops_it() -> None:
    redis = pytest.importorskip("redis")
    actor = RoleActor()
    url = actor.start_redis_on("127.0.0.1")
    node = actor._redis  # noqa: SLF001 -- the test looks at what the actor holds
    try:
        assert url.startswith("redis://:") and "@127.0.0.1:" in url
        assert node.proc is not None and node.proc.poll() is None
        assert os.listdir(node.tmp) == []  # the config (with the password) is gone
        client = redis.Redis.from_url(url)
        assert client.ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_url(url.replace(url.split("@")[0], "redis://:wrong")).ping()
        client.close()
    finally:
        proc, tmp = node.proc, node.tmp
        assert actor.stop_redis() is True
    assert proc.poll() is not None and not os.path.exists(tmp)
    assert actor.stop_redis() is True  # stopping again is harmless


def test_an_actor_without_redis_has_nothing_to_stop() -> None:
    assert RoleActor().stop_redis() is False


def test_role_arguments_travel_as_json() -> None:
    addresses = FleetAddresses(
        status="tcp://10.0.0.1:5000",
        experience="/tmp/x.sock",
        params_name="p",
        authkey_hex="00" * 16,
        redis_url="redis://:pw@10.0.0.1:6379/0",
        run="r",
        claim_token="t",
    )
    args = ("{}", addresses, 3, 0.5, None)
    assert decode_args(encode_args(args)) == args
    with pytest.raises(TypeError, match="list"):
        encode_args(([1],))
