"""Cluster backends: the same roles placed by a cluster engine instead of this host's
supervisor. :mod:`~rlfleet.fleet.cluster.ray` places them as Ray actors (``rlfleet train
--ray``); Ray is an optional extra (``.[ray]``), imported only by these modules."""
