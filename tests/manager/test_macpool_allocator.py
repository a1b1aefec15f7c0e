"""The in-memory allocator agrees with a plain set model, and keeps its promises on its own."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from manager.macpool.allocator import MacAllocator, PoolExhausted, RangeInUse
from manager.macpool.ranges import MacRange, check_range, merge_ranges, unicast_count, unicast_segments
from virtfleet.errors import InvalidArgument
from virtfleet.macaddr import format_mac, is_multicast, parse_field, unicast_field

# Small ranges around the unicast/multicast boundary at 01:00:00:00:00:00, so sequences
# exercise the multicast gap, several ranges, merging and wrap-around.
BOUNDARY = 0x010000000000
LOW = BOUNDARY - 40
HIGH = BOUNDARY + 8
SECOND = 0x020000000000 - 24   # a second unicast region just below 02:00:00:00:00:00 (which is unicast too)

addresses = st.one_of(st.integers(LOW, HIGH), st.integers(SECOND, SECOND + 40))


@st.composite
def mac_ranges(draw):
    base = draw(st.sampled_from([LOW, SECOND]))
    first = draw(st.integers(base, base + 40))
    last = draw(st.integers(first, min(first + 20, base + 48)))
    return MacRange(first, last)


def model_free(ranges: list[MacRange], used: set[int]) -> set[int]:
    return {m for r in ranges for m in range(r.first, r.last + 1) if not is_multicast(m)} - used


class AllocatorAgainstSetModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.alloc = MacAllocator([MacRange(LOW, LOW + 10)])
        self.ranges = [MacRange(LOW, LOW + 10)]
        self.used: set[int] = set()

    @rule(n=st.integers(1, 12))
    def allocate(self, n):
        free = model_free(self.ranges, self.used)
        if n > len(free):
            with pytest.raises(PoolExhausted) as err:
                self.alloc.allocate(n)
            assert err.value.free == len(free)
            return
        got = self.alloc.allocate(n)
        assert got == sorted(got) and len(set(got)) == n
        assert set(got) <= free, "handed out a used, multicast or out-of-range address"
        self.used |= set(got)

    @rule(mac=addresses)
    def claim(self, mac):
        if is_multicast(mac):
            return
        assert self.alloc.claim(mac) == (mac not in self.used)
        self.used.add(mac)

    @precondition(lambda self: self.used)
    @rule(data=st.data())
    def release(self, data):
        mac = data.draw(st.sampled_from(sorted(self.used)))
        self.alloc.release(mac)
        self.used.discard(mac)

    @rule(r=mac_ranges())
    def add_range(self, r):
        if not unicast_segments([r]):
            return
        self.alloc.add_range(r)
        self.ranges = merge_ranges([*self.ranges, r])

    @rule(r=mac_ranges())
    def remove_range(self, r):
        in_the_way = {m for m in self.used if r.first <= m <= r.last}
        if in_the_way:
            with pytest.raises(RangeInUse) as err:
                self.alloc.remove_range(r)
            assert err.value.in_use == len(in_the_way)
            return
        self.alloc.remove_range(r)
        covered = {m for x in self.ranges for m in range(x.first, x.last + 1)} - set(range(r.first, r.last + 1))
        assert {m for x in self.alloc.ranges for m in range(x.first, x.last + 1)} == covered
        self.ranges = self.alloc.ranges  # same coverage as the model's, checked just above

    @invariant()
    def usage_matches(self):
        in_ranges = {m for m in self.used if any(x.first <= m <= x.last for x in self.ranges)}
        u = self.alloc.usage()
        assert u.total == unicast_count(self.ranges)
        assert u.free == len(model_free(self.ranges, self.used))
        assert (u.used, u.custom) == (len(self.used), len(self.used - in_ranges))

    @invariant()
    def each_used_mac_is_known(self):
        assert all(self.alloc.is_used(m) for m in self.used)


TestAllocatorAgainstSetModel = AllocatorAgainstSetModel.TestCase
TestAllocatorAgainstSetModel.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


def test_released_mac_comes_back_only_after_every_other_free_one():
    alloc = MacAllocator([MacRange(0x020000000000, 0x020000000009)])
    first = alloc.allocate(1)
    alloc.release(first[0])
    others = alloc.allocate(9)
    assert first[0] not in others
    assert alloc.allocate(1) == first


def test_allocation_moves_across_ranges_in_turn():
    alloc = MacAllocator([MacRange(0x020000000000, 0x020000000001), MacRange(0x020000000100, 0x020000000101)])
    assert [format_mac(m) for m in alloc.allocate(3)] == ["02:00:00:00:00:00", "02:00:00:00:00:01",
                                                         "02:00:00:00:01:00"]


def test_multicast_addresses_are_never_handed_out():
    alloc = MacAllocator([MacRange(BOUNDARY - 2, BOUNDARY + 5)])
    assert alloc.total == 2
    assert alloc.allocate(2) == [BOUNDARY - 2, BOUNDARY - 1]
    with pytest.raises(PoolExhausted):
        alloc.allocate(1)


def test_overlapping_ranges_are_merged():
    assert merge_ranges([MacRange(5, 10), MacRange(1, 6), MacRange(11, 12), MacRange(20, 21)]) == \
        [MacRange(1, 12), MacRange(20, 21)]


def test_a_whole_oui_fits_and_more_is_refused():
    r = check_range(0x02AB_CD00_0000, 0x02AB_CDFF_FFFF)
    assert MacAllocator([r]).total == 1 << 24
    with pytest.raises(InvalidArgument) as err:
        check_range(0x02AB_CD00_0000, 0x02AB_CE00_0000)
    assert err.value.field == "range.last"


@pytest.mark.parametrize("text, field_ok", [
    ("02:00:00:00:00:01", True), ("02-00-00-00-00-0A", True), ("02000000000b", True), ("0200.0000.000c", True),
    ("02:00:00:00:00", False), ("02:00:00:00:00:0g", False), ("02:00-00:00:00:01", False), ("", False),
])
def test_mac_parsing(text, field_ok):
    if field_ok:
        assert format_mac(parse_field(text, "mac")).count(":") == 5
    else:
        with pytest.raises(InvalidArgument) as err:
            parse_field(text, "mac")
        assert err.value.field == "mac"


def test_multicast_mac_is_refused_naming_the_field():
    with pytest.raises(InvalidArgument) as err:
        unicast_field("01:00:5e:00:00:01", "mac")
    assert err.value.field == "mac" and "multicast" in err.value.description


def test_from_after_to_is_refused():
    with pytest.raises(InvalidArgument) as err:
        check_range(10, 9)
    assert err.value.field == "range.last"


def test_bulk_claim_agrees_with_one_by_one():
    ranges = [MacRange(0x020000000000, 0x0200000003ff), MacRange(0x020000001000, 0x02000000100f)]
    used = [0x020000000001, 0x020000000005, 0x0200000003ff, 0x020000001003, 0x02aaaaaaaaaa]
    one, bulk = MacAllocator(ranges), MacAllocator(ranges)
    for m in used:
        one.claim(m)
    bulk.claim_many(used[:3])
    bulk.claim_many(used[3:])
    bulk.claim_many(used[:2])          # claiming again changes nothing
    assert one.usage() == bulk.usage() and all(bulk.is_used(m) for m in used)
    assert one.allocate(5) == bulk.allocate(5)


# -- the bitmap search at any fill (the scattered, nearly full case above all) --------------------------

UNICAST = 0x02_00_00_00_00_00


@settings(max_examples=200, deadline=None)
@given(size=st.integers(1, 6000), shift=st.integers(0, 15), share=st.sampled_from([0.003, 0.01, 0.05, 0.3, 0.9, 1.0]),
       seed=st.integers(0, 2**32), cursor=st.integers(0, 6000), batches=st.lists(st.integers(1, 900), max_size=8))
def test_allocation_at_any_fill_hands_out_the_next_free_addresses(size, shift, share, seed, cursor, batches):
    """Against a list of the free addresses in cursor order: every density, alignment and cursor
    (sparse bytes with one free bit, bytes with several, wholly free runs, the cursor inside a byte)."""
    r = MacRange(UNICAST + shift, UNICAST + shift + size - 1)
    rnd = random.Random(seed)
    free = sorted(rnd.sample(range(r.first, r.last + 1), max(1, int(size * share))))
    alloc = MacAllocator([r])
    alloc.claim_many(sorted(set(range(r.first, r.last + 1)) - set(free)))
    start = r.first + cursor % size
    alloc.start_after(start - 1)
    order = [m for m in free if m >= start] + [m for m in free if m < start]
    taken = 0
    for n in batches:
        if n > len(order) - taken:
            with pytest.raises(PoolExhausted):
                alloc.allocate(n)
            continue
        assert alloc.allocate(n) == sorted(order[taken:taken + n])
        taken += n
    assert alloc.free == len(free) - taken
    assert all(alloc.is_used(m) for m in order[:taken]) and not any(alloc.is_used(m) for m in order[taken:])


def test_a_nearly_full_large_range_hands_out_its_scattered_free_addresses_in_order():
    """99 % used at random over 2^18 addresses (the bench's case, smaller): several search windows
    per segment, and the turn past the segment's end."""
    r = MacRange(UNICAST, UNICAST + (1 << 18) - 1)
    rnd = random.Random(7)
    free = sorted(rnd.sample(range(r.first, r.last + 1), r.size // 100))
    alloc = MacAllocator([r])
    alloc.claim_many(sorted(set(range(r.first, r.last + 1)) - set(free)))
    alloc.start_after(free[len(free) // 2] - 1)
    order = free[len(free) // 2:] + free[:len(free) // 2]
    got = [m for _ in range(len(free) // 1000) for m in alloc.allocate(1000)]
    assert sorted(got) == sorted(order[:len(got)]) and got[:1000] == order[:1000]
    rest = alloc.allocate(alloc.free)
    assert sorted(got + rest) == free and alloc.free == 0
