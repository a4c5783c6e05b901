"""The loss RNG of the event engine, :class:`SplitMix64`, in plain Python ints: the compiled
engine (:mod:`.fast`) runs the same arithmetic on int64."""

from __future__ import annotations

_M63 = 0x7FFFFFFFFFFFFFFF
_GOLDEN = -7046029254386353131  # 0x9E3779B97F4A7C15 as a signed 64-bit int
_MIX1 = -4658895280553007687
_MIX2 = -7723592293110705685


def _wrap64(v: int) -> int:
    return ((v + (1 << 63)) & ((1 << 64) - 1)) - (1 << 63)


class SplitMix64:
    """splitmix64 on 63-bit state: the same stream the compiled engine (fast.py) draws, so both
    engines lose the same packets for the same seed."""

    __slots__ = ("s",)

    def __init__(self, seed: int) -> None:
        self.s = int(seed)

    def random(self) -> float:
        x = _wrap64(self.s + _GOLDEN) & _M63
        self.s = x
        z = _wrap64((x ^ (x >> 30)) * _MIX1) & _M63
        z = _wrap64((z ^ (z >> 27)) * _MIX2) & _M63
        z ^= z >> 31
        return (z >> 11) * (1.0 / 4503599627370496.0)
