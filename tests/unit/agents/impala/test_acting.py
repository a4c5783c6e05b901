"""The IMPALA acting step in the shared actor loop: unrolls carry the version that acted them."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import FakeLink, FakeOutbox

from rlfleet.agents.common.actor import run_actor
from rlfleet.agents.impala.messages import unroll_problem
from rlfleet.agents.impala.network import build_network
from rlfleet.agents.impala.spec import SPEC
from rlfleet.agents.spec import ActorSlot
from rlfleet.cli.presets import build_config
from rlfleet.envs.spec import probe_env
from rlfleet.models.params import flatten_into, param_count
from rlfleet.transport.codec import decode
from rlfleet.transport.ports import CMD_STOP

T, K = 5, 3

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_actor_pushes_unrolls_with_the_version_it_acted_with():
    config = build_config(
        "impala-cartpole",
        [f"algo.unroll_length={T}", f"env.envs_per_actor={K}", "model.hidden=[16]"],
    )
    net = build_network(config, probe_env("CartPole-v1"))
    flat = flatten_into(net, np.empty(param_count(net), np.float32))

    class Params:
        calls = 0

        def fetch_if_newer(self, have: int, out: np.ndarray) -> int | None:
            Params.calls += 1
            version = 1 if Params.calls < 4 else 2  # a newer version after a few unrolls
            if version <= have:
                return None
            out[:] = flat
            return version

    outbox = FakeOutbox()

    class StopLater(FakeLink):
        def poll_command(self, timeout: float = 0.0) -> str | None:
            return CMD_STOP if len(outbox.payloads) >= 6 else None

    link = StopLater()
    run_actor(SPEC.make_acting, config, ActorSlot(0, 1, 0), 7, outbox, Params(), link)
    messages = [decode(p) for p in outbox.payloads]
    assert len(messages) >= 6
    versions = [m.meta["policy_version"] for m in messages]
    assert versions[0] == 1 and versions[-1] == 2 and versions == sorted(versions)
    for m in messages:
        assert unroll_problem(m.arrays, T, (4,), np.dtype(np.float32), 2) == ""
        assert m.arrays["policy_version"].shape == ()  # a 0-d array stays 0-d on the wire
        assert int(m.arrays["policy_version"]) == m.meta["policy_version"]
    # consecutive unrolls overlap by the bootstrap observation
    np.testing.assert_array_equal(messages[0].arrays["obs"][-1], messages[1].arrays["obs"][0])
    stats = link.of_kind("actor_stats")
    assert stats and stats[-1]["env_steps"] >= 6 * T * K
