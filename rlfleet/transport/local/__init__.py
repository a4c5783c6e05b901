"""Local transport: roles on one host.

* :mod:`~rlfleet.transport.local.sockets`: authenticated Unix-socket connections (status links
  to the launcher, experience links to the learner), bytes only;
* :mod:`~rlfleet.transport.local.pipes`: codec messages over those connections, with
  backpressure (:class:`PipeOutbox`, :class:`PipeInbox`);
* :mod:`~rlfleet.transport.local.shm`: parameters in a seqlock-guarded shared-memory vector
  (:class:`SharedParams`, and the learner's and readers' ends of it).
"""

from rlfleet.transport.local.pipes import PipeInbox, PipeOutbox
from rlfleet.transport.local.shm import CreatingParams, LazyParams, SharedParams
from rlfleet.transport.local.sockets import AcceptLoop, RoleLink, connect, send_command

__all__ = [
    "AcceptLoop",
    "CreatingParams",
    "LazyParams",
    "PipeInbox",
    "PipeOutbox",
    "RoleLink",
    "SharedParams",
    "connect",
    "send_command",
]
