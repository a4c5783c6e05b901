"""Host commands that join a Redis run from another machine: ``rlfleet actor``
(:mod:`~rlfleet.fleet.hosts.actors`), ``rlfleet replay`` (:mod:`~rlfleet.fleet.hosts.service`)
and ``rlfleet evaluator`` (:mod:`~rlfleet.fleet.hosts.evaluator`)."""
