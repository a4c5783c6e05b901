"""netsim: congestion control as an RL environment (mvfst-rl's problem on a mahimahi-faithful
packet-level simulator), with the classic senders and Pantheon-style evaluation.

Importing this package is cheap: the engine, Gymnasium and numpy-heavy modules load on first use.

Main entry points::

    from rlfleet.envs.netsim import register_netsim_envs
    register_netsim_envs()
    env = gymnasium.make("rlfleet/NetSim-v0", scenario="aws_korea_to_china")

    from rlfleet.envs.netsim.scenarios import PANTHEON, build_network
    from rlfleet.envs.netsim.cc import make_controller
    from rlfleet.envs.netsim.evaluate import evaluate
"""

from __future__ import annotations

ENV_ID = "rlfleet/NetSim-v0"
ENV_ID_ASYNC = "rlfleet/NetSimAsync-v0"

__all__ = ["ENV_ID", "ENV_ID_ASYNC", "register_netsim_envs"]


def register_netsim_envs() -> None:
    """Register the Gymnasium ids (idempotent).

    * ``rlfleet/NetSim-v0``: synchronous (``action_delay_ms=0``); any NetSimEnv kwarg works.
    * ``rlfleet/NetSimAsync-v0``: the same with ``action_delay_ms=50`` by default.

    Both have a vector entry point, the compiled engine:
    ``gymnasium.make_vec(ENV_ID, num_envs=64, vectorization_mode="vector_entry_point", ...)``.
    """
    import gymnasium

    vec = "rlfleet.envs.netsim.vector:NetSimVectorEnv"
    if ENV_ID not in gymnasium.registry:
        gymnasium.register(
            id=ENV_ID, entry_point="rlfleet.envs.netsim.env:NetSimEnv", vector_entry_point=vec
        )
    if ENV_ID_ASYNC not in gymnasium.registry:
        gymnasium.register(
            id=ENV_ID_ASYNC,
            entry_point="rlfleet.envs.netsim.env:NetSimEnv",
            vector_entry_point=vec,
            kwargs={"action_delay_ms": 50.0},
        )
