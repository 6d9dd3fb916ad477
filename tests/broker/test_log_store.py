"""Segments, sparse indexes and lookups of the in-memory store, checked against brute force."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamclient.broker.log.epochs import LeaderEpochCache
from streamclient.broker.log.index import OffsetIndex, TimeIndex
from streamclient.broker.log.memory import MemoryLogStore, MemorySegment

_HEADER = struct.Struct(">qiibIhiqqqhii")


def fake_batch(base: int, count: int, max_ts: int, payload: int) -> bytes:
    """A batch-shaped blob: the store reads headers only, so the body is filler."""
    body = b"\x00" * payload
    length = _HEADER.size - 12 + len(body)
    return _HEADER.pack(base, length, 0, 2, 0, 0, count - 1, max_ts, max_ts, -1, -1, -1, count) + body


batches_strategy = st.lists(
    st.tuples(st.integers(1, 5), st.integers(0, 10_000), st.integers(0, 200)), min_size=1, max_size=60)


def fill(segment: MemorySegment, spec: list[tuple[int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Append the batches; returns (base, last, max_ts, position) per batch."""
    out = []
    offset = segment.base_offset
    for count, ts, payload in spec:
        data = fake_batch(offset, count, ts, payload)
        out.append((offset, offset + count - 1, ts, segment.size_bytes))
        segment.append(data, base_offset=offset, last_offset=offset + count - 1, max_timestamp=ts)
        offset += count
    return out


def test_offset_index_lookup_is_greatest_entry_at_or_below() -> None:
    index = OffsetIndex()
    for rel, pos in [(0, 0), (10, 500), (25, 1300)]:
        index.append(rel, pos)
    assert index.lookup(0) == (0, 0)
    assert index.lookup(9) == (0, 0)
    assert index.lookup(10) == (10, 500)
    assert index.lookup(99) == (25, 1300)
    with pytest.raises(ValueError):
        index.append(25, 2000)
    index.truncate_to(10)
    assert index.entries() == [(0, 0)]


def test_time_index_only_keeps_growing_timestamps() -> None:
    index = TimeIndex()
    assert index.maybe_append(100, 0)
    assert not index.maybe_append(100, 5)
    assert index.maybe_append(300, 9)
    assert index.lookup(50) is None
    assert index.lookup(100) is None  # nothing strictly earlier: scan from the start
    assert index.lookup(101) == 0
    assert index.lookup(10_000) == 9


@settings(max_examples=60, deadline=None)
@given(spec=batches_strategy, interval=st.sampled_from([0, 100, 1000, 1 << 20]), data=st.data())
def test_find_matches_brute_force(spec: list[tuple[int, int, int]], interval: int,
                                  data: st.DataObject) -> None:
    segment = MemorySegment(50, 0, interval)
    written = fill(segment, spec)
    end = written[-1][1] + 1
    # sparse: with a large interval only the first batch is indexed
    if interval >= 1 << 20:
        assert len(segment.offset_index) == 1
    for target in data.draw(st.lists(st.integers(0, end + 3), min_size=1, max_size=20)):
        loc = segment.find(target)
        expected = next(((b, last, pos) for b, last, _, pos in written if last >= target), None)
        if expected is None:
            assert loc is None
        else:
            assert loc is not None
            assert (loc.base_offset, loc.last_offset, loc.position) == expected


@settings(max_examples=60, deadline=None)
@given(spec=batches_strategy, interval=st.sampled_from([0, 150, 1 << 20]), data=st.data())
def test_find_by_timestamp_matches_brute_force(spec: list[tuple[int, int, int]], interval: int,
                                               data: st.DataObject) -> None:
    segment = MemorySegment(0, 0, interval)
    written = fill(segment, spec)
    for target in data.draw(st.lists(st.integers(-1, 10_001), min_size=1, max_size=20)):
        loc = segment.find_by_timestamp(target)
        expected = next((b for b, _, ts, _ in written if ts >= target), None)
        assert (loc.base_offset if loc else None) == expected


def test_store_locates_segments_and_deletes_oldest() -> None:
    store = MemoryLogStore()
    for base in (0, 10, 20):
        segment = store.roll(base, 0, 4096)
        fill(segment, [(10, base, 0)])
    assert [s.base_offset for s in store.segments] == [0, 10, 20]
    assert store.segment_for(15) is store.segments[1]
    assert store.segment_for(-1) is None
    assert [s.base_offset for s in store.segments_from(25)] == [20]
    assert store.delete_oldest().base_offset == 0
    assert store.segment_for(5) is None
    store.delete_oldest()
    with pytest.raises(ValueError):
        store.delete_oldest()


def test_empty_active_segment_is_replaced_on_roll() -> None:
    store = MemoryLogStore()
    store.roll(0, 0, 4096)
    store.roll(0, 5, 4096)
    assert len(store.segments) == 1 and store.segments[0].created_ms == 5


def test_segment_truncation_recomputes_running_figures() -> None:
    segment = MemorySegment(0, 0, 0)
    fill(segment, [(2, 10, 0), (2, 50, 0), (2, 30, 0)])
    segment.truncate_to(2)
    assert segment.next_offset == 2 and segment.batch_count == 1
    assert segment.max_timestamp == 10
    with pytest.raises(ValueError):
        segment.truncate_to(1)


def test_leader_epoch_cache_end_offsets() -> None:
    cache = LeaderEpochCache()
    assert cache.end_offset_for(0, 10) == (-1, -1)
    cache.assign(1, 0)
    cache.assign(3, 20)
    cache.assign(4, 35)
    cache.assign(2, 50)  # not newer: ignored
    assert cache.end_offset_for(4, 60) == (4, 60)
    assert cache.end_offset_for(3, 60) == (3, 35)
    assert cache.end_offset_for(2, 60) == (1, 20)  # unknown epoch: the floor epoch, end of it
    assert cache.end_offset_for(0, 60) == (0, 0)  # below every epoch
    assert cache.end_offset_for(9, 60) == (-1, -1)
    cache.assign(5, 35)  # epoch 4 wrote nothing: superseded
    assert cache.entries() == [(1, 0), (3, 20), (5, 35)]
    cache.truncate_from_start(25)
    assert cache.entries() == [(3, 25), (5, 35)]
