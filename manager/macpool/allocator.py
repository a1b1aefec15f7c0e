"""The in-memory allocator: one byte per address (1 = free) per unicast segment.

Finding the next free address is `bytearray.find`, a C memchr, so the cost per
MAC stays nearly flat from an empty pool to a 99 % full one. A rotating cursor
hands out the next free address after the last one handed out, so a MAC that
was just released comes back only after every other free one has been used.
Addresses outside the ranges ("custom", claimed explicitly) live in a set.
"""
from __future__ import annotations

import bisect
import operator
from collections import deque
from dataclasses import dataclass
from itertools import repeat
from typing import Iterable, Sequence

from .ranges import MacRange, contains, merge_ranges, subtract_range, unicast_segments

FREE = 1
USED = 0


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


class _Segment:
    __slots__ = ("first", "last", "free_map")

    def __init__(self, r: MacRange) -> None:
        self.first = r.first
        self.last = r.last
        self.free_map = bytearray(b"\x01") * r.size

    @property
    def size(self) -> int:
        return self.last - self.first + 1


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

    def usage(self) -> Usage:
        total = self.total
        return Usage(total=total, used=total - self._free + len(self._custom), free=self._free,
                     custom=len(self._custom))

    def is_used(self, mac: int) -> bool:
        seg = self._segment_of(mac)
        if seg is None:
            return mac in self._custom
        return seg.free_map[mac - seg.first] == USED

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
        while len(found) < count:
            seg = self._segments[index]
            fmap = seg.free_map
            pos = fmap.find(FREE, offset)
            while pos != -1 and len(found) < count:
                fmap[pos] = USED
                found.append(seg.first + pos)
                offset = pos + 1
                pos = fmap.find(FREE, offset)
            if len(found) < count or offset >= seg.size:
                index, offset = (index + 1) % len(self._segments), 0
        self._cursor = (index, offset)
        self._free -= count
        found.sort()
        return found

    def claim(self, mac: int) -> bool:
        """Mark `mac` in use; False when it already was (the caller decides if that is a duplicate)."""
        seg = self._segment_of(mac)
        if seg is None:
            if mac in self._custom:
                return False
            self._custom.add(mac)
            return True
        pos = mac - seg.first
        if seg.free_map[pos] == USED:
            return False
        seg.free_map[pos] = USED
        self._free -= 1
        return True

    def claim_many(self, macs: Sequence[int]) -> None:
        """Mark many addresses used at C speed (loading a pool of millions).

        Fast when `macs` is ascending and lies in one segment, as the service
        loads them; anything else goes one by one.
        """
        if not macs:
            return
        seg = self._segment_of(macs[0])
        if seg is None or macs[-1] > seg.last or macs[-1] < macs[0]:
            for mac in macs:
                self.claim(mac)
            return
        fmap = seg.free_map
        lo, hi = macs[0] - seg.first, macs[-1] - seg.first + 1
        before = fmap.count(FREE, lo, hi)
        deque(map(fmap.__setitem__, map(operator.sub, macs, repeat(seg.first)), repeat(USED)), maxlen=0)
        self._free -= before - fmap.count(FREE, lo, hi)

    def segments(self) -> list[MacRange]:
        """The unicast parts of the ranges: the only addresses handed out."""
        return [MacRange(s.first, s.last) for s in self._segments]

    def release(self, mac: int) -> None:
        seg = self._segment_of(mac)
        if seg is None:
            self._custom.discard(mac)
            return
        pos = mac - seg.first
        if seg.free_map[pos] == USED:
            seg.free_map[pos] = FREE
            self._free += 1

    # -- changing the ranges -----------------------------------------------------------------

    def in_use_within(self, r: MacRange) -> int:
        n = sum(1 for m in self._custom if r.first <= m <= r.last)
        for seg in self._segments:
            lo, hi = max(seg.first, r.first), min(seg.last, r.last)
            if lo <= hi:
                part = seg.free_map[lo - seg.first:hi - seg.first + 1]
                n += len(part) - part.count(FREE)
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
                    new.free_map[lo - new.first:hi - new.first + 1] = old.free_map[lo - old.first:hi - old.first + 1]
        customs, self._custom = self._custom, set()
        self._free = sum(s.size - s.free_map.count(USED) for s in self._segments)
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
