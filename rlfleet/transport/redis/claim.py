"""A learner host's claim on a run name, kept with the run's identity across Redis restarts.

``rlfleet:{run}:claim`` holds ``live:<token>``: the token is a random id the learner host draws
once per run. A restarted Redis (no persistence) loses the key, so the host re-asserts it every
:data:`BEAT_S` seconds in one script that also puts back what hosts need to join
(``rlfleet:{run}:config``, the actor counter ``rlfleet:{run}:actor_seq`` at least as high as
it was) and the host's heartbeat in the ``learners`` group.

A second learner host for the same name cannot take it in the gap after a restart: it writes
``pending:<its token>`` and waits :data:`PROBATION_S` (several beats of a live host) before it
promotes its claim to ``live:``. A live host that beats meanwhile overwrites the pending claim
with its own, and the newcomer is refused. A host that finds ``live:<another token>`` in the key
(it could not reach Redis for longer than the claim's TTL, and another host took the name) has
lost the run: :meth:`RunClaim.assert_claim` says so, and that host stops without touching the
other's keys.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from rlfleet.transport.redis.connection import RETRYABLE, describe, raise_if_fatal
from rlfleet.transport.redis.keys import check_name, key

#: Seconds between two re-assertions by the live host (one small script each).
BEAT_S = 0.25
#: Seconds a newcomer waits with a pending claim: many beats of a live host.
PROBATION_S = 2.0
#: Seconds the claim (and the host's heartbeat) lasts without a beat.
CLAIM_TTL_S = 15.0
LIVE, PENDING = "live:", "pending:"

# KEYS: claim, config, actor_seq, heartbeat, heartbeat index.
# ARGV: token, ttl ms, config json, actor_seq floor, member, heartbeat value.
# {1, seq} when the claim is (now) ours; {0, holder} when another host's live claim is there.
_ASSERT = """
local mine = 'live:' .. ARGV[1]
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= mine and string.sub(holder, 1, 5) == 'live:' then
  return {0, holder}
end
redis.call('SET', KEYS[1], mine, 'PX', tonumber(ARGV[2]))
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SET', KEYS[2], ARGV[3]) end
local seq = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
if seq < tonumber(ARGV[4]) then
  seq = tonumber(ARGV[4])
  redis.call('SET', KEYS[3], seq)
end
redis.call('SET', KEYS[4], ARGV[6], 'PX', tonumber(ARGV[2]))
redis.call('SADD', KEYS[5], ARGV[5])
return {1, seq}
"""

# KEYS: claim. ARGV: token, ttl ms. 1 if our pending claim became live, else 0.
_PROMOTE = """
if redis.call('GET', KEYS[1]) == 'pending:' .. ARGV[1] then
  redis.call('SET', KEYS[1], 'live:' .. ARGV[1], 'PX', tonumber(ARGV[2]))
  return 1
end
return 0
"""

# KEYS: claim, heartbeat, heartbeat index. ARGV: token, member. Removes only what is ours.
_RELEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == 'live:' .. ARGV[1] or holder == 'pending:' .. ARGV[1] then
  redis.call('DEL', KEYS[1])
end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[2])
return 0
"""

# KEYS: config, actor_seq. The next actor number, or 0 while the run has no config (the
# learner host has not re-published it after a restart yet: a number now could repeat one).
_NEXT_SEQ = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('INCR', KEYS[2])
"""


def claim_key(run: str) -> str:
    """``rlfleet:{run}:claim``: ``live:<token>`` of the learner host that holds the run."""
    return key(run, "claim")


def config_key(run: str) -> str:
    """``rlfleet:{run}:config``: the run's resolved config (JSON), for hosts that join."""
    return key(run, "config")


def actor_seq_key(run: str) -> str:
    """``rlfleet:{run}:actor_seq``: the counter that numbers remote actors ``r1``, ``r2``, ..."""
    return key(run, "actor_seq")


def next_actor_seq(client: Any, run: str) -> int | None:
    """The next run-wide actor number, or None while the run has no config in Redis (after a
    restart, until the learner host re-publishes it) or Redis is unreachable."""
    try:
        seq = int(client.eval(_NEXT_SEQ, 2, config_key(run), actor_seq_key(run)))
    except RETRYABLE as exc:
        raise_if_fatal(exc, describe(client))
        return None
    return seq or None


class RunClaim:
    """One learner host's claim on ``run`` (see the module docstring).

    :meth:`acquire` once (``None`` when the claim is ours, else who holds it), then
    :meth:`assert_claim` every :data:`BEAT_S` seconds, :meth:`release` at the end.
    """

    def __init__(
        self,
        client: Any,
        run: str,
        token: str,
        config_json: str,
        *,
        ttl_s: float = CLAIM_TTL_S,
        probation_s: float = PROBATION_S,
    ) -> None:
        self._client = client
        self._where = describe(client)
        self.run, self.token = run, check_name(token, "claim token")
        self.member = f"launcher-{token[:8]}"
        self.ttl_s, self.probation_s = ttl_s, probation_s
        self._keys = [
            claim_key(run),
            config_key(run),
            actor_seq_key(run),
            key(run, "learners", self.member),
            key(run, "learners"),
        ]
        self._config_json = config_json
        self._heartbeat = json.dumps({"host": socket.gethostname(), "started": time.time()})
        self._assert = client.register_script(_ASSERT)
        self._promote = client.register_script(_PROMOTE)
        self._release = client.register_script(_RELEASE)
        #: The highest actor number seen: restored after a restart so numbers never repeat.
        self.seq_floor = 0
        self.errors = 0
        self.holder: str | None = None  # another host's claim, once found

    @property
    def _ttl_ms(self) -> int:
        return max(1, int(self.ttl_s * 1000))

    def acquire(self) -> str | None:
        """Take the name: None once the claim is ours, else the claim that holds it (another
        host's ``live:`` or ``pending:`` token). Takes :attr:`probation_s` seconds when the name
        is free. Raises :class:`~rlfleet.errors.TransportError` if Redis is unreachable."""
        pending = PENDING + self.token
        # a pending claim expires soon after the probation if its host dies meanwhile
        pending_ms = int((self.probation_s + 5.0) * 1000)
        if not self._client.set(self._keys[0], pending, nx=True, px=pending_ms):
            return self._read_holder() or "(expired meanwhile; try again)"
        deadline = time.monotonic() + self.probation_s
        while time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))  # a live host beats
            holder = self._read_holder()
            if holder != pending:
                return holder or "(unknown: the claim vanished)"
        if not int(self._promote(keys=self._keys[:1], args=[self.token, self._ttl_ms])):
            return self._read_holder() or "(unknown: the claim vanished)"
        return None

    def _read_holder(self) -> str | None:
        raw = self._client.get(self._keys[0])
        return raw.decode(errors="replace") if raw is not None else None

    def assert_claim(self) -> bool | None:
        """Re-assert the claim and put back the config, the actor counter and the heartbeat if
        a restart lost them. True: the run is ours; False: another host's live claim is there
        (:attr:`holder`); None: Redis is unreachable (unknown, try again)."""
        args = [self.token, self._ttl_ms, self._config_json, self.seq_floor, self.member]
        try:
            ok, value = self._assert(keys=self._keys, args=[*args, self._heartbeat])
        except RETRYABLE as exc:
            raise_if_fatal(exc, self._where)
            self.errors += 1
            return None
        if not int(ok):
            self.holder = value.decode(errors="replace") if isinstance(value, bytes) else value
            return False
        self.seq_floor = max(self.seq_floor, int(value))
        return True

    def release(self) -> None:
        """Give the claim and the heartbeat up, if still ours (a clean end); best effort."""
        try:
            self._release(keys=[self._keys[0], *self._keys[3:]], args=[self.token, self.member])
        except RETRYABLE as exc:
            raise_if_fatal(exc, self._where)
