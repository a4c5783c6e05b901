"""`rlfleet bench cluster`: time to solve and start-up through ``rlfleet train --ray`` on a
two-node Ray cluster of this machine, next to the local launcher in the same session.

Modules: :mod:`.nodes` (the two-node cluster: ``ray start --head`` + ``ray start --address``,
shared with the ``--ray`` e2e test), :mod:`.cli` (the protocol, the interleaved runs, the report
and the JSON document).
"""

from benchmarks.cluster.cli import main

__all__ = ["main"]
