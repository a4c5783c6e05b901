"""Where the roles of one fleet meet (a leaf: no transport or agent imports)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FleetAddresses:
    """Where the roles of one fleet meet.

    ``status``/``experience`` are Unix-socket paths, ``params_name`` the shared-memory block and
    ``authkey_hex`` the sockets' HMAC key. ``redis_url``/``run`` are set only for the Redis data
    plane; the URL (which may hold a password) travels to the roles as a process argument and is
    never written to the run folder. A role on a host without the launcher has no sockets
    (``status`` is empty): its status goes through Redis too. ``claim_token`` is the launcher's
    token in the run's Redis claim: the learner publishes parameters only while the claim is
    its launcher's.
    """

    status: str
    experience: str
    params_name: str
    authkey_hex: str
    redis_url: str = ""
    run: str = ""
    claim_token: str = ""

    @property
    def authkey(self) -> bytes:
        return bytes.fromhex(self.authkey_hex)

    @property
    def over_redis(self) -> bool:
        return bool(self.redis_url)

    @classmethod
    def remote(cls, redis_url: str, run: str) -> FleetAddresses:
        """A host that joins a Redis run: data plane and status both through Redis."""
        return cls("", "", "", "", redis_url=redis_url, run=run)
