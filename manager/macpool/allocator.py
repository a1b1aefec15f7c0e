"""The in-memory allocator: one bit per address (1 = free) per unicast segment.

A bit, not a byte: a whole OUI (2^24 addresses, the largest range) costs 2 MiB,
so a pool's memory is bounded by its ranges (at most `MAX_RANGES_PER_POOL`) —
a byte per address made 32 such ranges cost half a GiB.

Finding free addresses stays at C speed, with no Python step per address (the
byte map's loop was one `find` per address, and a per-address loop over bits made a
99 % full pool a third slower than it): a run of wholly free bytes is taken with one
slice; scattered free bits are located by `translate` + `splitlines` + `accumulate`
(see `_free_addresses`). The search window is sized from the pool's fill, so a nearly
full pool is searched in one step per call. Loading and counting go through Python's
big integers (also C loops). A rotating cursor hands out the next free
address after the last one handed out, so a MAC that was just released comes back
only after every other free one has been used. Addresses outside the ranges
("custom", claimed explicitly) live in a set.
"""
from __future__ import annotations

import bisect
import operator
from collections import deque
from dataclasses import dataclass
from itertools import accumulate, compress, islice, repeat
from typing import Iterable, Sequence

from .ranges import MacRange, contains, merge_ranges, subtract_range, unicast_segments

_WINDOW = 1 << 16                                 # bitmap bytes searched at most per step
_WHOLE = bytes([0] * 255 + [1])                   # translate table: a byte with all eight free -> 1
_NEWLINE = b" " + b"\n" * 255                     # translate table: a byte with any free bit -> b"\n"
_BITS = tuple(tuple(i for i in range(8) if b >> i & 1) for b in range(256))   # the free bits of a byte
_SEVERAL = bytes(int(len(bits) > 1) for bits in _BITS)                     # translate table: 1 if several
_LOWEST_PLUS = tuple(bytes(r + bits[0] if bits else 0 for bits in _BITS) for r in range(8))  # r + lowest bit
_BIT = tuple(bytes(b >> k & 1 for b in range(256)) for k in range(8))      # translate table: bit k -> 0/1
_LOW_MASK = tuple((1 << i) - 1 for i in range(9))  # bits below i


class PoolExhausted(Exception):
    def __init__(self, requested: int, free: int) -> None:
        super().__init__(f"{requested} requested, {free} free")
        self.requested = requested
        self.free = free


class RangeInUse(Exception):
    def __init__(self, in_use: int) -> None:
        super().__init__(f"{in_use} MAC(s) in use in the range")
        self.in_use = in_use


@dataclass(frozen=True)
class Usage:
    total: int      # unicast addresses in the ranges
    used: int       # in use, inside the ranges and outside
    free: int       # total minus those in use inside the ranges
    custom: int     # in use outside the ranges


def _all_free(size: int) -> bytearray:
    """`size` free bits; the padding bits of the last byte are 0 (never free)."""
    fmap = bytearray(b"\xff") * (size // 8)
    if size % 8:
        fmap.append(_LOW_MASK[size % 8])
    return fmap


def _bits(fmap: bytes | bytearray) -> int:
    return int.from_bytes(fmap, "little")


def _free_addresses(part: bytearray, base: int, need: int) -> list[int]:
    """The first `need` free addresses of `part` (bitmap bytes whose bit 0 is address `base`),
    ascending, found without a Python step per address: a Python loop per address is what made
    a nearly full pool slower than the byte map (whose loop was one `find` per address).

    Sparse (a nearly full pool): the bytes with a free bit become b"\\n", the others b" ", and
    `splitlines(True)` cuts the bitmap after each free byte; `accumulate` turns the pieces'
    lengths into byte positions, and each byte's lowest free bit comes from the free bytes
    alone (the used ones deleted once, then small translates) — all C loops. The pieces are
    cut from `bytes`, not a bytearray: one allocation each, which is most of the cost. The few bytes with more
    than one free bit add their other bits in Python, merged in by one sort. Dense: the bytes
    are unpacked to one byte per bit and `compress` walks them.
    """
    free = part.translate(None, b"\0")                # the bytes with a free bit, in order
    several = free.translate(_SEVERAL)                 # per such byte: 1 if it has more than one
    multi = several.count(1)
    if multi * 4 > len(several):                       # dense: one byte per bit, walked in order
        unpacked = bytearray(len(part) << 3)
        for k in range(8):
            unpacked[k::8] = part.translate(_BIT[k])
        return list(islice(compress(range(base, base + len(unpacked)), unpacked), need))
    lines = bytes(part).translate(_NEWLINE).splitlines(True)   # each ends with a free byte (but maybe
    byte_of = accumulate(map(len, lines), initial=(base >> 3) - 1)   # the last); bytes, not bytearray:
    next(byte_of)                                      # one allocation per piece. (base >> 3) + position
    lowest = free.translate(_LOWEST_PLUS[base & 7])    # zip stops here: the last line drops
    found = list(islice(map(operator.add, map(operator.lshift, byte_of, repeat(3)), lowest), need))
    if multi:                                          # their other free bits
        more = []
        i = several.find(1, 0, len(found))
        while i != -1:
            bits = _BITS[free[i]]
            low = found[i] - bits[0]
            more.extend([low + bit for bit in bits[1:]])
            i = several.find(1, i + 1, len(found))
        if more:
            found += more
            found.sort()
            del found[need:]
    return found


def _clear_through(part: bytearray, last: int) -> None:
    """Clear every bit of `part` at offsets 0..last (all of them were just taken, or were used)."""
    byte = last >> 3
    part[:byte] = bytes(byte)
    part[byte] &= 0xFF ^ _LOW_MASK[(last & 7) + 1]


def _take_window(window: bytearray, start: int, need: int, found: list[int]) -> int:
    """Take up to `need` free addresses from `window` (bitmap bytes whose bit 0 is address `start`),
    clearing their bits; returns how many are still needed.

    A run of wholly free bytes at its start (an empty pool) goes by one slice; the rest of the
    window goes to `_free_addresses`.
    """
    pos = 0
    if window[0] == 0xFF and need >= 8:
        run = min(need >> 3, len(window))
        stop = window.translate(_WHOLE).find(0, 0, run)   # the first byte not wholly free
        run = stop if stop != -1 else run
        found.extend(range(start, start + (run << 3)))
        window[:run] = bytes(run)
        need -= run << 3
        pos = run
    if need and pos < len(window):
        part = window[pos:] if pos else window
        base = start + (pos << 3)
        got = _free_addresses(part, base, need)
        if got:
            found.extend(got)
            _clear_through(part, got[-1] - base)
            if pos:
                window[pos:] = part
            need -= len(got)
    return need


class _Segment:
    __slots__ = ("first", "last", "free_map")

    def __init__(self, r: MacRange) -> None:
        self.first = r.first
        self.last = r.last
        self.free_map = _all_free(r.size)

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def free_count(self) -> int:
        return _bits(self.free_map).bit_count()

    def free_bits(self, lo: int, hi: int) -> int:
        """Bits lo..hi (offsets, inclusive) as an int, bit 0 = offset lo."""
        return (_bits(self.free_map[lo >> 3:(hi >> 3) + 1]) >> (lo & 7)) & ((1 << (hi - lo + 1)) - 1)

    def set_bits(self, lo: int, hi: int, value: int) -> None:
        """Overwrite bits lo..hi (offsets, inclusive) with `value` (bit 0 = offset lo)."""
        a, b = lo >> 3, (hi >> 3) + 1
        width = hi - lo + 1
        mask = ((1 << width) - 1) << (lo & 7)
        old = _bits(self.free_map[a:b])
        self.free_map[a:b] = ((old & ~mask) | ((value << (lo & 7)) & mask)).to_bytes(b - a, "little")


class MacAllocator:
    def __init__(self, ranges: Iterable[MacRange] = (), used: Iterable[int] = ()) -> None:
        self.ranges: list[MacRange] = merge_ranges(ranges)
        self._segments = [_Segment(s) for s in unicast_segments(self.ranges)]
        self._starts = [s.first for s in self._segments]
        self._free = sum(s.size for s in self._segments)
        self._custom: set[int] = set()
        self._cursor = (0, 0)  # (segment index, offset): where the next search starts
        for mac in used:
            self.claim(mac)

    # -- what the pool looks like ----------------------------------------------------------

    @property
    def total(self) -> int:
        return sum(s.size for s in self._segments)

    @property
    def free(self) -> int:
        return self._free

    def memory(self) -> int:
        """Bytes held for the ranges' bitmaps (the custom set aside): what a pool costs a manager."""
        return sum(len(s.free_map) for s in self._segments)

    def usage(self) -> Usage:
        total = self.total
        return Usage(total=total, used=total - self._free + len(self._custom), free=self._free,
                     custom=len(self._custom))

    def is_used(self, mac: int) -> bool:
        seg = self._segment_of(mac)
        if seg is None:
            return mac in self._custom
        pos = mac - seg.first
        return not seg.free_map[pos >> 3] >> (pos & 7) & 1

    def in_ranges(self, mac: int) -> bool:
        return contains(self.ranges, mac)

    # -- allocation --------------------------------------------------------------------------

    def allocate(self, count: int) -> list[int]:
        """`count` free addresses after the cursor, across segments in turn; sorted."""
        if count < 1:
            raise ValueError("count must be at least 1")
        if count > self._free:
            raise PoolExhausted(count, self._free)
        found: list[int] = []
        index, offset = self._cursor
        if index >= len(self._segments):
            index, offset = 0, 0
        per_byte = 1.1 * self.total / (8 * self._free)   # bitmap bytes per free address, about
        wrapped = False
        while len(found) < count:
            seg = self._segments[index]
            offset = self._take(seg, offset, count - len(found), found, per_byte)
            if len(found) < count or offset >= seg.size:
                index, offset = index + 1, 0
                if index == len(self._segments):
                    index, wrapped = 0, True
        self._cursor = (index, offset)
        self._free -= count
        if wrapped:                       # segments ascend and each is taken in order: only a wrap unsorts
            found.sort()
        return found

    @staticmethod
    def _take(seg: _Segment, offset: int, need: int, found: list[int], per_byte: float) -> int:
        """Up to `need` free addresses of `seg` from `offset` on, appended to `found` in ascending order;
        returns the offset after the last one taken (the segment's size when it ran out).

        The first window is sized for `need` at the pool's average density (`per_byte` bitmap
        bytes per free address), so a nearly full pool is searched in one or two steps and an
        empty one does not translate bytes it will not use; later windows double."""
        fmap, nbytes = seg.free_map, len(seg.free_map)
        byte = offset >> 3
        taken_before = len(found)
        if offset & 7 and byte < nbytes:            # the cursor's own byte: only bits from the cursor on
            b = fmap[byte]
            bits = _BITS[b & ~_LOW_MASK[offset & 7] & 0xFF][:need]
            for bit in bits:
                found.append(seg.first + (byte << 3) + bit)
                b &= ~(1 << bit)
            fmap[byte] = b
            need -= len(bits)
            byte += 1
        width = min(_WINDOW, 16 + int(need * per_byte))
        while need and byte < nbytes:
            end = min(byte + width, nbytes)
            window = fmap[byte:end]
            need = _take_window(window, seg.first + (byte << 3), need, found)
            fmap[byte:end] = window
            byte, width = end, min(_WINDOW, 64 + int(need * per_byte))   # sized for what is left
        if len(found) > taken_before:
            return found[-1] - seg.first + 1           # ascending: the last is the highest
        return min(byte << 3, seg.size)

    def claim(self, mac: int) -> bool:
        """Mark `mac` in use; False when it already was (the caller decides if that is a duplicate)."""
        seg = self._segment_of(mac)
        if seg is None:
            if mac in self._custom:
                return False
            self._custom.add(mac)
            return True
        pos = mac - seg.first
        b = seg.free_map[pos >> 3]
        bit = 1 << (pos & 7)
        if not b & bit:
            return False
        seg.free_map[pos >> 3] = b & ~bit
        self._free -= 1
        return True

    def claim_many(self, macs: Sequence[int]) -> None:
        """Mark many addresses used at C speed (loading a pool of millions).

        Fast when `macs` is ascending and lies in one segment, as the service
        loads them: a byte per address for their span only (a temporary), packed to
        bits with big-integer arithmetic; anything else goes one by one.
        """
        if not macs:
            return
        seg = self._segment_of(macs[0])
        if seg is None or macs[-1] > seg.last or macs[-1] < macs[0]:
            for mac in macs:
                self.claim(mac)
            return
        lo = (macs[0] - seg.first) & ~7
        hi = macs[-1] - seg.first
        span = ((hi - lo) | 7) + 1                      # whole bytes of the bitmap
        used = bytearray(span)                          # 1 = claimed now, one byte per address
        deque(map(used.__setitem__, map(operator.sub, macs, repeat(seg.first + lo)), repeat(1)), maxlen=0)
        packed = 0
        for k in range(8):                              # byte k of every 8 -> bit k of one byte
            packed |= _bits(used[k::8]) << k
        a, b = lo >> 3, (lo + span) >> 3
        old = _bits(seg.free_map[a:b])
        new = old & ~packed
        seg.free_map[a:b] = new.to_bytes(b - a, "little")
        self._free -= old.bit_count() - new.bit_count()

    def segments(self) -> list[MacRange]:
        """The unicast parts of the ranges: the only addresses handed out."""
        return [MacRange(s.first, s.last) for s in self._segments]

    def release(self, mac: int) -> None:
        seg = self._segment_of(mac)
        if seg is None:
            self._custom.discard(mac)
            return
        pos = mac - seg.first
        b = seg.free_map[pos >> 3]
        bit = 1 << (pos & 7)
        if not b & bit:
            seg.free_map[pos >> 3] = b | bit
            self._free += 1

    # -- changing the ranges -----------------------------------------------------------------

    def in_use_within(self, r: MacRange) -> int:
        n = sum(1 for m in self._custom if r.first <= m <= r.last)
        for seg in self._segments:
            lo, hi = max(seg.first, r.first), min(seg.last, r.last)
            if lo <= hi:
                n += (hi - lo + 1) - seg.free_bits(lo - seg.first, hi - seg.first).bit_count()
        return n

    def add_range(self, r: MacRange) -> None:
        self._rebuild(merge_ranges([*self.ranges, r]))

    def remove_range(self, r: MacRange) -> None:
        """Refused (RangeInUse) while any address in `r` is in use."""
        in_use = self.in_use_within(r)
        if in_use:
            raise RangeInUse(in_use)
        self._rebuild(subtract_range(self.ranges, r))

    def _rebuild(self, ranges: list[MacRange]) -> None:
        """New segments keep the old free maps where they overlap; custom MACs move in or out."""
        old_segments = self._segments
        cursor_mac = self._cursor_mac()
        self.ranges = ranges
        self._segments = [_Segment(s) for s in unicast_segments(ranges)]
        self._starts = [s.first for s in self._segments]
        for new in self._segments:
            for old in old_segments:
                lo, hi = max(new.first, old.first), min(new.last, old.last)
                if lo <= hi:
                    new.set_bits(lo - new.first, hi - new.first, old.free_bits(lo - old.first, hi - old.first))
        customs, self._custom = self._custom, set()
        self._free = sum(s.free_count() for s in self._segments)
        for mac in customs:
            self.claim(mac)
        self._cursor = self._position_at_or_after(cursor_mac)

    # -- positions ---------------------------------------------------------------------------

    def _segment_of(self, mac: int) -> _Segment | None:
        i = bisect.bisect_right(self._starts, mac) - 1
        if i >= 0 and mac <= self._segments[i].last:
            return self._segments[i]
        return None

    def _cursor_mac(self) -> int | None:
        index, offset = self._cursor
        if index < len(self._segments):
            return self._segments[index].first + offset
        return None

    def _position_at_or_after(self, mac: int | None) -> tuple[int, int]:
        if mac is None:
            return (0, 0)
        for i, seg in enumerate(self._segments):
            if mac <= seg.last:
                return (i, max(0, mac - seg.first))
        return (0, 0)

    def start_after(self, mac: int) -> None:
        """Place the cursor just after `mac` (where a restarted manager left off)."""
        self._cursor = self._position_at_or_after(mac + 1)
