"""``rlfleet bench transport``: the Redis transport on loopback, next to ``redis-benchmark``.

Everything goes through rlfleet's own classes (:class:`RedisParams`, :class:`RedisOutbox`,
:class:`RedisInbox`, the codec), against a throw-away ``redis-server`` that the benchmark starts
on a free 127.0.0.1 port with a random password and no persistence. Measured, as the Redis-based
Ape-X work did (issue 4):

* **parameter fetch latency** p50/p99 for 1 MB and 13 MB float32 vectors: the actor's
  ``fetch_if_newer`` right after the learner published a new version (version check, download,
  validation, copy into the actor's vector), on its own connection;
* **experience push latency** p50/p99 of ``RedisOutbox.push`` until the message is in Redis
  (``push`` + ``flush``), for batches of 50 transitions with CartPole-sized vector observations
  and with 4x84x84 uint8 frame stacks (obs and next_obs), raw and compressed with lz4 / zstd when
  installed; the time ``push()`` itself holds the actor, encode and decode times beside them;
* **experience push throughput** with 1, 2, 4, 8 actor processes (spawned), each pushing an
  encoded message in a loop through ``RedisOutbox`` while a trimmer keeps the list short, next to
  ``redis-benchmark -t lpush`` with the same payload size and the same number of clients
  (``-c K`` against K actors), measured in the same run, interleaved. The outbox's sender thread
  sends what queued up during one round trip in the next (one ``RPUSH`` of several messages);
  redis-benchmark (``-P 1``) and the plain redis-py column send one message per round trip;
* **replay pull throughput and bytes per learner update**: the learner pulling raw experience
  (``RedisInbox.pull``, decode and schema check) versus a replay service next to Redis that sends
  only sampled batches. The service path is *measured* through the real replay service
  (``benchmarks.service_pull.bench_replay_service``: a ``ReplayService`` filled over Redis,
  a learner-side store pulling batches and sending priority updates) for raw messages; for lz4
  messages, or an install without the service, it is *computed* from encoded sample and priority
  messages with their wire-only pull rate through Redis. Each row says which.
  ``rlfleet bench replay-service`` measures whole fleets with and without the service.

Targets: push throughput >= 80% of redis-benchmark's at the same payload size and client count;
13 MB parameter fetch p99 <= 50 ms.

Modules: :mod:`.payloads` (the messages), :mod:`.latency` (parameter fetch, push latency),
:mod:`.throughput` (push throughput, redis-benchmark), :mod:`.replay_pull` (pull rates, bytes
per update), :mod:`.report` (the tables), :mod:`.cli` (plan, run, command line); the server is
:class:`benchmarks.loopback_redis.LoopbackRedis`.
"""

from benchmarks.transport.cli import main

__all__ = ["main"]
