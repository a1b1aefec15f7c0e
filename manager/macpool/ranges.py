"""Inclusive MAC ranges: validation, merging, subtraction and their unicast parts."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from virtfleet.errors import InvalidArgument
from virtfleet.macaddr import MAX_MAC, MULTICAST_BIT, format_mac, parse_field

# A whole OUI: the largest range one pool range may hold (its bitmap is 16 MiB).
MAX_RANGE_SIZE = 1 << 24


@dataclass(frozen=True, order=True)
class MacRange:
    first: int
    last: int

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def __str__(self) -> str:
        return f"{format_mac(self.first)}-{format_mac(self.last)}"


def parse_range(first_text: str, last_text: str = "", count: int = 0, field: str = "range") -> MacRange:
    """A range as typed: FIRST and LAST, or FIRST and a COUNT of addresses; `field.first` etc. name the culprit."""
    first = parse_field(first_text, f"{field}.first")
    if count and last_text:
        raise InvalidArgument(f"{field}.count", "give either last or count, not both")
    if count:
        if count < 0:
            raise InvalidArgument(f"{field}.count", "must be positive")
        last = first + count - 1
        if last > MAX_MAC:
            raise InvalidArgument(f"{field}.count", f"{count} addresses from {format_mac(first)} cross the end of "
                                                    "the address space (ff:ff:ff:ff:ff:ff)")
        return check_range(first, last, field)
    if not last_text:
        raise InvalidArgument(f"{field}.last", "give the last address of the range (or a count)")
    return check_range(first, parse_field(last_text, f"{field}.last"), field)


def check_range(first: int, last: int, field: str = "range") -> MacRange:
    if not 0 <= first <= MAX_MAC:
        raise InvalidArgument(f"{field}.first", "outside the 48-bit address space")
    if last > MAX_MAC:
        raise InvalidArgument(f"{field}.last", "the range crosses the end of the address space (ff:ff:ff:ff:ff:ff)")
    if first > last:
        raise InvalidArgument(f"{field}.last", f"{format_mac(last)} is before first {format_mac(first)}")
    r = MacRange(first, last)
    if r.size > MAX_RANGE_SIZE:
        raise InvalidArgument(f"{field}.last", f"a range holds at most {MAX_RANGE_SIZE} addresses (one OUI); "
                                             f"this one holds {r.size}")
    if not unicast_segments([r]):
        raise InvalidArgument(f"{field}.first", f"{r} holds only multicast addresses")
    return r


def merge_ranges(ranges: Iterable[MacRange]) -> list[MacRange]:
    """Sorted, with overlapping or touching ranges joined."""
    merged: list[MacRange] = []
    for r in sorted(ranges):
        if merged and r.first <= merged[-1].last + 1:
            if r.last > merged[-1].last:
                merged[-1] = MacRange(merged[-1].first, r.last)
        else:
            merged.append(r)
    return merged


def merged_within_limit(ranges: Iterable[MacRange], field: str) -> list[MacRange]:
    """Merge, refusing a merged range larger than one range may be (its bitmap would grow past an OUI's)."""
    merged = merge_ranges(ranges)
    for r in merged:
        if r.size > MAX_RANGE_SIZE:
            raise InvalidArgument(field, f"merged with the pool's other ranges this makes {r}, {r.size} addresses; "
                                         f"a range holds at most {MAX_RANGE_SIZE}")
    return merged


def subtract_range(ranges: Iterable[MacRange], cut: MacRange) -> list[MacRange]:
    out: list[MacRange] = []
    for r in ranges:
        if r.last < cut.first or r.first > cut.last:
            out.append(r)
            continue
        if r.first < cut.first:
            out.append(MacRange(r.first, cut.first - 1))
        if r.last > cut.last:
            out.append(MacRange(cut.last + 1, r.last))
    return out


def overlaps(ranges: Iterable[MacRange], cut: MacRange) -> bool:
    return any(r.first <= cut.last and cut.first <= r.last for r in ranges)


def unicast_segments(ranges: Iterable[MacRange]) -> list[MacRange]:
    """The parts of `ranges` whose first octet is even: the only addresses ever handed out."""
    block = MULTICAST_BIT  # unicast and multicast alternate in blocks of 2^40
    out: list[MacRange] = []
    for r in ranges:
        start = r.first
        while start <= r.last:
            block_end = (start | (block - 1))
            end = min(block_end, r.last)
            if not start & block:
                out.append(MacRange(start, end))
            start = end + 1
    return out


def unicast_count(ranges: Iterable[MacRange]) -> int:
    return sum(s.size for s in unicast_segments(ranges))


def contains(ranges: Iterable[MacRange], mac: int) -> bool:
    return any(r.first <= mac <= r.last for r in ranges)


def gaps(ranges: Iterable[MacRange]) -> list[MacRange]:
    """The address space outside `ranges` (merged): where custom MACs live."""
    out: list[MacRange] = []
    start = 0
    for r in merge_ranges(ranges):
        if r.first > start:
            out.append(MacRange(start, r.first - 1))
        start = r.last + 1
    if start <= MAX_MAC:
        out.append(MacRange(start, MAX_MAC))
    return out
