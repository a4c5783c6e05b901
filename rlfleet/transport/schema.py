"""The shape check every inbox applies before a role sees a message: named arrays with fixed
dtypes and per-item shapes, one batch length shared by all of them.

Both transports use it (:class:`~rlfleet.transport.local.PipeInbox`,
:class:`~rlfleet.transport.redis.RedisInbox`); the schema comes from the agent
(``spec.message_schema``).
"""

from __future__ import annotations

from collections.abc import Mapping

from rlfleet.transport.codec import Message

#: ``name -> (dtype name, per-item shape)``
Schema = Mapping[str, tuple[str, tuple[int, ...]]]


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
