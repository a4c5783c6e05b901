"""One folder per algorithm family, each with a spec the rest of rlfleet asks for everything
algorithm-specific (:mod:`rlfleet.agents.spec`); :mod:`rlfleet.agents.registry` maps
``run.algorithm`` to specs lazily; :mod:`rlfleet.agents.common` holds the shells every agent
shares (actor loop, learner loop, evaluator, checkpoints, config sections)."""
