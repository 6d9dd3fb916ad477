"""The consumer's fast record decoder against the general batch reader.

``decode_consumer_records`` builds ``ConsumerRecord``s in one pass and gives up (returns
``None``) on anything unusual; ``CompletedFetch`` then falls back to the general reader.
These tests hold it to that: whatever the fast path returns is exactly what the general
reader gives, it is really used for ordinary batches, and every fallback (malformed
records, offsets that do not rise, over-long varints) behaves as the general path did.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest
from crc32c import crc32c
from hypothesis import given, settings
from hypothesis import strategies as st

from streamclient.consumer.offsets import FetchPosition
from streamclient.consumer.records import CompletedFetch, decode_consumer_records
from streamclient.consumer.subscription import SubscriptionState
from streamclient.errors import CorruptRecordException
from streamclient.protocol.records import (
    Compression,
    RecordBatch,
    RecordBatchBuilder,
    TimestampType,
    iter_batches,
)
from streamclient.protocol.records.batch import HEADER, decode_records
from streamclient.structs import ConsumerRecord, TopicPartition

TP = TopicPartition("topic", 3)
BASE_TS = 1_700_000_000_000

# --- raw records, byte by byte (so that the tests can write what a builder never would) ---


def uvarint(value: int, pad: int = 0) -> bytes:
    """Unsigned varint; ``pad`` extra zero groups make an over-long (but legal) encoding."""
    groups = []
    while True:
        groups.append(value & 0x7F)
        value >>= 7
        if not value:
            break
    groups += [0] * pad
    return bytes([g | 0x80 for g in groups[:-1]] + [groups[-1]])


def varint(value: int, pad: int = 0) -> bytes:
    return uvarint((value << 1) ^ (value >> 63), pad)


@dataclasses.dataclass
class RawRecord:
    timestamp_delta: int
    offset_delta: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[bytes, bytes | None]]
    attributes: int = 0
    pads: tuple[int, int, int, int, int, int] = (0, 0, 0, 0, 0, 0)
    length_error: int = 0  # added to the declared length: nonzero means corrupt
    extra: bytes = b""  # bytes inside the record after its fields: corrupt when any
    header_count_error: int = 0  # -1 - len(headers) writes a count of -1: corrupt

    def encode(self) -> bytes:
        pad_len, pad_ts, pad_od, pad_key, pad_value, pad_count = self.pads
        body = bytes([self.attributes])
        body += varint(self.timestamp_delta, pad_ts) + varint(self.offset_delta, pad_od)
        body += varint(-1, pad_key) if self.key is None else varint(len(self.key), pad_key) + self.key
        if self.value is None:
            body += varint(-1, pad_value)
        else:
            body += varint(len(self.value), pad_value) + self.value
        body += varint(len(self.headers) + self.header_count_error, pad_count)
        for name, value in self.headers:
            body += varint(len(name)) + name
            body += varint(-1) if value is None else varint(len(value)) + value
        body += self.extra
        return varint(len(body) + self.length_error, pad_len) + body


def raw_batch(records: Sequence[RawRecord], *, base_offset: int = 0,
              count: int | None = None, attributes: int = 0, leader_epoch: int = -1) -> bytes:
    """A magic-2 batch around hand-written records, with a correct CRC."""
    section = b"".join(r.encode() for r in records)
    last_delta = max((r.offset_delta for r in records), default=0)
    batch_length = HEADER.size - 12 + len(section)
    header = HEADER.pack(base_offset, batch_length, leader_epoch, 2, 0, attributes,
                         last_delta, BASE_TS, BASE_TS + 10, -1, -1, -1,
                         len(records) if count is None else count)
    data = bytearray(header + section)
    data[17:21] = crc32c(bytes(data[21:])).to_bytes(4, "big")
    return bytes(data)


def as_tuple(record: ConsumerRecord[Any, Any]) -> tuple[Any, ...]:
    return dataclasses.astuple(record)


def general(section: bytes, count: int, base_offset: int) -> list[tuple[Any, ...]]:
    """What the general reader makes of a section, shaped as the fast path's records."""
    return [
        (TP.topic, TP.partition, r.offset, r.timestamp, 0, r.key, r.value, None,
         -1 if r.key is None else len(r.key), -1 if r.value is None else len(r.value),
         r.headers)
        for r in decode_records(section, count, base_offset, BASE_TS, None)
    ]


def fast(section: bytes, count: int, base_offset: int) -> list[ConsumerRecord[Any, Any]] | None:
    return decode_consumer_records(section, count, base_offset, BASE_TS, TP.topic,
                                   TP.partition, 0)


small_bytes = st.binary(max_size=40)
# sizes that need one, two and three varint bytes
sized_bytes = st.one_of(small_bytes, st.integers(60, 70).map(lambda n: b"v" * n),
                        st.integers(8190, 8200).map(lambda n: b"w" * n))
raw_records = st.builds(
    RawRecord,
    timestamp_delta=st.one_of(st.integers(-70, 70), st.integers(-(2**40), 2**40)),
    offset_delta=st.just(0),  # set by the test
    key=st.none() | small_bytes,
    value=st.none() | sized_bytes,
    headers=st.lists(st.tuples(st.binary(max_size=6), st.none() | small_bytes), max_size=3),
    attributes=st.sampled_from([0, 0, 0, 7]),
    # over-long encodings are legal: both readers must take them
    pads=st.tuples(*[st.sampled_from([0, 0, 0, 0, 1, 3])] * 6),
)
# offset deltas: a first one of one, two or three varint bytes, then steps of 1 or more
first_deltas = st.sampled_from([0, 0, 0, 1, 63, 64, 8191, 8192])
delta_steps = st.lists(st.sampled_from([1] * 6 + [2, 60, 8200]), min_size=6, max_size=6)
# at most one fault per example; about half the examples have none
FAULTS = ["none"] * 10 + [
    "length+1", "length-1", "length-200", "extra byte", "count+1", "count-1", "trailing",
    "step 0", "step -1", "first -1", "first -9000", "11-byte varint", "header count -1",
]


@settings(max_examples=200, deadline=None)
@given(records=st.lists(raw_records, min_size=1, max_size=6), first=first_deltas,
       steps=delta_steps, base_offset=st.integers(0, 2**40),
       fault=st.sampled_from(FAULTS), where=st.integers(0, 5))
def test_fast_path_decodes_exactly_like_the_general_reader(
    records: list[RawRecord], first: int, steps: list[int], base_offset: int,
    fault: str, where: int
) -> None:
    where %= len(records)
    steps[where] = {"step 0": 0, "step -1": -1}.get(fault, steps[where])
    delta = {"first -1": -1, "first -9000": -9000}.get(fault, first)
    for record, step in zip(records, steps[:len(records)], strict=True):
        record.offset_delta = delta
        delta += step
    faulty = records[where]
    if fault.startswith("length"):
        faulty.length_error = int(fault[len("length"):])
    elif fault == "extra byte":
        faulty.extra = b"\x00"
    elif fault == "header count -1":
        faulty.header_count_error = -1 - len(faulty.headers)
    elif fault == "11-byte varint":
        field = where % 6
        pads = list(faulty.pads)
        pads[field] = 10
        faulty.pads = (pads[0], pads[1], pads[2], pads[3], pads[4], pads[5])
    section = b"".join(r.encode() for r in records) + (b"\x02junk" if fault == "trailing" else b"")
    count = len(records) + {"count+1": 1, "count-1": -1}.get(fault, 0)
    try:
        expected: list[tuple[Any, ...]] | None = general(section, count, base_offset)
    except CorruptRecordException:
        expected = None
    got = fast(section, count, base_offset)
    if fault == "none":
        assert got is not None  # the ordinary case never falls back
    if got is not None:
        # whatever the fast path returns, the general reader returns too
        assert expected is not None
        assert [as_tuple(r) for r in got] == expected
        assert all(type(r) is ConsumerRecord for r in got)
        deltas = [r.offset - base_offset for r in got]
        assert deltas == sorted(set(deltas)) and (not deltas or deltas[0] >= 0)
    elif expected is not None:
        # the general reader takes it: a fallback then only for offset deltas that are
        # negative or do not rise
        deltas = [e[2] - base_offset for e in expected]
        assert deltas != sorted(set(deltas)) or deltas[0] < 0
        assert fault in ("step 0", "step -1", "first -1", "first -9000")


def test_builder_batches_take_the_fast_path() -> None:
    builder = RecordBatchBuilder(batch_size=1 << 24, base_offset=5)
    for i in range(300):  # offset deltas of one and two bytes
        builder.append(BASE_TS + i * 50, None if i % 2 else b"key", b"x" * (i % 130),
                       [("h", None)] if i % 7 == 0 else [])
    batch = RecordBatch(builder.build())
    got = decode_consumer_records(batch.records_data(), batch.record_count, batch.base_offset,
                                  batch.first_timestamp, "t", 0, 0)
    assert got is not None
    assert [r.offset for r in got] == list(range(5, 305))
    assert [(r.key, r.value, tuple(r.headers)) for r in got] == [
        (r.key, r.value, r.headers) for r in batch
    ]


def test_fast_records_equal_constructed_ones() -> None:
    # the fast path sets the slots one by one: every field of the dataclass must be set
    data = raw_batch([RawRecord(4, 0, b"k", b"value", [(b"h", b"1"), (b"n", None)])])
    (record,) = CompletedFetch(TP, 0, data).take()
    assert record == ConsumerRecord(TP.topic, TP.partition, 0, BASE_TS + 4, 0, b"k", b"value",
                                    None, 1, 5, (("h", b"1"), ("n", None)))
    assert {f.name for f in dataclasses.fields(ConsumerRecord)} == set(ConsumerRecord.__slots__)


def test_over_long_varint_falls_back_to_the_precise_error() -> None:
    # an 11-byte varint: the general reader rejects it, so the fast path must not accept it
    good = RawRecord(0, 0, None, b"a", [])
    bad = RawRecord(0, 1, None, b"b", [], pads=(0, 10, 0, 0, 0, 0))
    section = good.encode() + bad.encode()
    assert fast(section, 2, 0) is None
    with pytest.raises(CorruptRecordException):
        general(section, 2, 0)
    fetch = CompletedFetch(TP, 0, raw_batch([good, bad]))
    assert [r.value for r in fetch.take()] == [b"a"]
    with pytest.raises(CorruptRecordException):
        fetch.take()
    assert fetch.next_fetch_offset == 1


def test_corrupt_record_after_good_ones_in_a_crc_valid_batch() -> None:
    records = [RawRecord(0, i, None, b"v%d" % i, []) for i in range(4)]
    records[2].length_error = 1  # declares one byte more than it holds
    data = raw_batch(records) + raw_batch([RawRecord(0, 0, None, b"next", [])], base_offset=4)
    subs = SubscriptionState()
    subs.assign([TP])
    subs.seek(TP, 0)
    fetch = CompletedFetch(TP, 0, data)
    assert [r.offset for r in fetch.drain_into(subs, 1)] == [0]
    assert [r.offset for r in fetch.drain_into(subs)] == [1]  # up to the bad record
    assert subs.position(TP) == FetchPosition(2)
    with pytest.raises(CorruptRecordException):
        fetch.drain_into(subs)
    assert subs.position(TP) == FetchPosition(2)
    assert not fetch.exhausted


def test_offsets_that_do_not_rise_are_skipped_as_below_the_position() -> None:
    # a broker should never send these; the rule stays "below the position is skipped"
    records = [RawRecord(0, d, None, b"%d" % d, []) for d in (0, 2, 1, 2, 3)]
    fetch = CompletedFetch(TP, 0, raw_batch(records))
    assert [r.value for r in fetch.take()] == [b"0", b"2", b"3"]
    assert fetch.next_fetch_offset == 4


def test_log_append_time_replaces_every_timestamp() -> None:
    builder = RecordBatchBuilder(timestamp_type=TimestampType.LOG_APPEND_TIME)
    for i in range(3):
        builder.append(BASE_TS + i, None, b"v")
    (batch,) = iter_batches(builder.build())
    records = CompletedFetch(TP, 0, builder.build()).take()
    assert [r.timestamp for r in records] == [batch.max_timestamp] * 3
    assert {r.timestamp_type for r in records} == {1}


def test_a_failing_deserializer_leaves_the_position_for_a_refetch() -> None:
    calls: list[bytes | None] = []

    def deserializer(raw: bytes | None) -> bytes | None:
        calls.append(raw)
        if raw == b"bad":
            raise ValueError("cannot deserialize")
        return raw

    builder = RecordBatchBuilder()
    for value in (b"a", b"bad", b"c"):
        builder.append(BASE_TS, None, value)
    subs = SubscriptionState()
    subs.assign([TP])
    subs.seek(TP, 0)
    fetch = CompletedFetch(TP, 0, builder.build(), value_deserializer=deserializer)
    with pytest.raises(ValueError, match="cannot deserialize"):
        fetch.drain_into(subs)
    assert subs.position(TP) == FetchPosition(0)  # nothing was handed out
    # the half-deserialized fetch is dropped; the partition is fetched again from 0
    assert fetch.drain_into(subs) == []
    assert fetch.exhausted
    assert calls == [b"a", b"bad"]


# --- CompletedFetch against a model of the general path ---------------------------


def model_take_all(data: bytes, position: int) -> tuple[list[tuple[Any, ...]], int]:
    """The records and final position the general reader gives (the old behaviour)."""
    out = []
    for batch in iter_batches(data):
        if batch.next_offset <= position:
            continue
        for r in batch:
            if r.offset < position:
                continue
            position = r.offset + 1
            out.append((TP.topic, TP.partition, r.offset, r.timestamp,
                        int(batch.timestamp_type), r.key, r.value, None,
                        -1 if r.key is None else len(r.key),
                        -1 if r.value is None else len(r.value), r.headers))
        position = max(position, batch.next_offset)
    return out, position


batch_specs = st.lists(
    st.tuples(
        st.sampled_from([Compression.NONE, Compression.NONE, Compression.GZIP]),
        st.lists(st.tuples(st.none() | small_bytes, st.none() | sized_bytes,
                           st.lists(st.tuples(st.text(max_size=4), st.none() | small_bytes),
                                    max_size=2)),
                 min_size=1, max_size=8),
        st.integers(0, 3),  # gap before the batch
    ),
    min_size=1, max_size=4,
)


@settings(max_examples=60, deadline=None)
@given(specs=batch_specs, start=st.integers(0, 30),
       limits=st.lists(st.integers(1, 5) | st.none(), min_size=1, max_size=12))
def test_completed_fetch_matches_the_general_path(
    specs: list[tuple[Compression, list[tuple[Any, Any, Any]], int]],
    start: int,
    limits: list[int | None],
) -> None:
    data = b""
    offset = 0
    for codec, rows, gap in specs:
        offset += gap
        builder = RecordBatchBuilder(compression=codec, base_offset=offset, batch_size=1 << 24,
                                     partition_leader_epoch=offset % 3)
        for i, (key, value, headers) in enumerate(rows):
            builder.append(BASE_TS + 17 * i, key, value, headers)
        data += builder.build()
        offset += len(rows)
    expected, final = model_take_all(data, start)
    fetch = CompletedFetch(TP, start, data)
    got: list[ConsumerRecord[Any, Any]] = []
    for limit in limits:
        taken = fetch.take(limit)
        assert limit is None or len(taken) <= limit
        if taken:
            assert fetch.next_fetch_offset == taken[-1].offset + 1 or (
                fetch.next_fetch_offset > taken[-1].offset)
        got += taken
    got += fetch.take()
    assert [as_tuple(r) for r in got] == expected
    assert fetch.next_fetch_offset == final
    assert fetch.exhausted


def test_an_impossible_record_count_fails_fast() -> None:
    # a CRC-valid batch claiming 2**31 - 1 records must not allocate for them
    data = raw_batch([RawRecord(0, 0, None, b"v", [])], count=2**31 - 1)
    assert fast(data[61:], 2**31 - 1, 0) is None
    fetch = CompletedFetch(TP, 0, data)
    assert [r.value for r in fetch.take()] == [b"v"]  # the general reader's behaviour
    with pytest.raises(CorruptRecordException):
        fetch.take()


@pytest.mark.parametrize("timestamp_delta", [0, 100, 2**30])  # one, two, five bytes
@pytest.mark.parametrize("offset_delta", [-1, -100, -9000, -(2**20)])
@pytest.mark.parametrize("pad", [0, 2])
def test_a_negative_offset_delta_falls_back(timestamp_delta: int, offset_delta: int,
                                            pad: int) -> None:
    record = RawRecord(timestamp_delta, offset_delta, None, b"v", [],
                       pads=(0, 0, pad, 0, 0, 0))
    section = record.encode()
    assert fast(section, 1, 10**6) is None
    assert [e[2] for e in general(section, 1, 10**6)] == [10**6 + offset_delta]


@pytest.mark.parametrize("between", [5, 6, 100, 2**40, -(2**40)])
def test_timestamps_of_records_in_a_row(between: int) -> None:
    # the decoder reuses a timestamp while the one-byte delta repeats: a different delta
    # of any width in between must not leave a stale one behind
    deltas = [5, 5, between, 5, between, between, 6]
    records = [RawRecord(d, i, None, b"v", []) for i, d in enumerate(deltas)]
    got = fast(b"".join(r.encode() for r in records), len(records), 0)
    assert got is not None
    assert [r.timestamp - BASE_TS for r in got] == deltas
