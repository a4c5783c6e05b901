"""What every inbox applies to raw bytes before a role sees a message, the same for both
transports (:class:`~rlfleet.transport.local.PipeInbox`, :class:`~rlfleet.transport.redis.RedisInbox`):

1. **codec**: decode within the size limit (anything malformed raises only ``CodecError``);
2. **kind**: one of the kinds this inbox takes;
3. **meta**: the counters roles read from metadata (``env_steps``, ``policy_version``), when
   present, are non-negative integers;
4. **schema**: the agent's arrays with fixed dtypes and per-item shapes and one batch length
   (``spec.message_schema``);
5. **content**: the agent's value checks (``spec.message_check``: finite priorities, actions in
   the action space, ...).

A message failing any step is dropped and counted by reason (:class:`MessageGate`); a role never
sees it, so no peer's message can end a role.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from rlfleet.errors import CodecError
from rlfleet.transport.codec import DEFAULT_MAX_MESSAGE_BYTES, Message, decode

#: ``name -> (dtype name, per-item shape)``
Schema = Mapping[str, tuple[str, tuple[int, ...]]]
#: ``message -> why it is unusable, or ""``
ContentCheck = Callable[[Message], str]
#: Metadata counters a role may read: non-negative integers when present.
COUNTER_META = ("env_steps", "policy_version")
#: Reasons a message is rejected, in the order the gate checks them.
REASONS = ("codec", "kind", "meta", "schema", "content")


def check_schema(message: Message, expect: Schema) -> str:
    """Why ``message`` does not match ``expect`` (``name -> (dtype, per-item shape)``), or "".

    Every expected array must be present with that dtype and shape ``(n, *per_item)``, with one
    ``n`` shared by all of them (a batch of n transitions).
    """
    lengths: set[int] = set()
    for name, (dtype, item_shape) in expect.items():
        array = message.arrays.get(name)
        if array is None:
            return f"missing array {name!r}; expected {sorted(expect)}"
        if array.dtype.name != dtype or array.ndim < 1 or array.shape[1:] != tuple(item_shape):
            return (
                f"array {name!r} is {array.dtype.name}{list(array.shape)}, "
                f"expected {dtype}[n, {', '.join(map(str, item_shape))}]"
            )
        lengths.add(array.shape[0])
    if len(lengths) > 1:
        return f"arrays disagree on the batch length: {sorted(lengths)}"
    return ""


def check_counter_meta(message: Message) -> str:
    """Why a counter in ``message.meta`` is not a non-negative integer, or ""."""
    for name in COUNTER_META:
        if name in message.meta:
            value = message.meta[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                return f"meta.{name} is {value!r}, not a count"
    return ""


class MessageGate:
    """Decodes and checks raw messages; counts what it received and rejected (by reason)."""

    def __init__(
        self,
        kinds: Iterable[str] | None = None,
        max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        expect: Schema | None = None,
        check: ContentCheck | None = None,
    ) -> None:
        self.kinds = frozenset(kinds) if kinds else None
        self.max_bytes = max_bytes
        self.expect = dict(expect) if expect else None
        self.check = check
        self.received = 0
        self.bytes_received = 0
        self.rejected_by_reason = dict.fromkeys(REASONS, 0)
        self.last_error = ""

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())

    def _reject(self, reason: str, problem: str) -> None:
        self.rejected_by_reason[reason] += 1
        self.last_error = problem

    def admit(self, raw: bytes) -> Message | None:
        """The message in ``raw`` if it passes every check, else None (counted)."""
        self.received += 1
        self.bytes_received += len(raw)
        try:
            message = decode(raw, self.max_bytes)
        except CodecError as exc:
            self._reject("codec", str(exc))
            return None
        if self.kinds is not None and message.kind not in self.kinds:
            self._reject("kind", f"unexpected message kind {message.kind[:80]!r}")
            return None
        # one after the other: the content check may read only what the schema guarantees
        for reason, problem_of in (
            ("meta", check_counter_meta),
            ("schema", (lambda m: check_schema(m, self.expect)) if self.expect else None),
            ("content", self.check),
        ):
            problem = problem_of(message) if problem_of is not None else ""
            if problem:
                self._reject(reason, problem)
                return None
        return message
