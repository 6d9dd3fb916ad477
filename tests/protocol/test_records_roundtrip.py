"""RecordBatchBuilder → RecordBatch round trips: every codec, keys/values/headers, nulls,
timestamps, producer state, transactional and control batches, size accounting."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamclient.errors import IllegalArgumentError, IllegalStateError
from streamclient.protocol.records import (
    Compression,
    CompressionRatioEstimator,
    ControlRecord,
    ControlRecordType,
    RecordBatch,
    RecordBatchBuilder,
    TimestampType,
    build_control_batch,
    iter_batches,
    read_batch,
    read_batch_header,
)

BASE_TS = 1_700_000_000_000
CODECS = list(Compression)

maybe_bytes = st.none() | st.binary(max_size=300)
headers = st.lists(st.tuples(st.text(max_size=12), maybe_bytes), max_size=3)
row = st.tuples(st.integers(-5_000, 5_000_000), maybe_bytes, maybe_bytes, headers)


def build(rows, **kwargs) -> bytes:
    builder = RecordBatchBuilder(batch_size=1 << 30, **kwargs)
    for i, (ts, key, value, hdrs) in enumerate(rows):
        assert builder.append(ts, key, value, hdrs) == i
    return builder.build()


def decoded(batch) -> list[tuple]:
    return [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in batch]


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(row, min_size=1, max_size=25), codec=st.sampled_from(CODECS))
def test_round_trip_any_records(rows, codec) -> None:
    rows = [(BASE_TS + delta, key, value, hdrs) for delta, key, value, hdrs in rows]
    data = build(rows, compression=codec)
    (batch,) = list(iter_batches(data))
    assert isinstance(batch, RecordBatch)
    assert batch.validate_crc()
    assert batch.compression == codec
    assert batch.record_count == len(rows) == len(batch)
    assert batch.first_timestamp == rows[0][0]
    assert batch.max_timestamp == max(r[0] for r in rows)
    assert batch.last_offset_delta == len(rows) - 1
    assert batch.next_offset == len(rows)
    assert decoded(batch) == [(i, ts, k, v, h) for i, (ts, k, v, h) in enumerate(rows)]


@pytest.mark.parametrize("codec", CODECS)
def test_null_and_empty_are_distinct_and_iteration_repeats(codec) -> None:
    rows = [(BASE_TS, None, b"", []), (BASE_TS + 1, b"", None, [("h", None), ("e", b"")]),
            (BASE_TS + 2, b"k" * 20_000, b"v" * 70_000, [("big", b"x" * 9000)])]
    batch = read_batch(build(rows, compression=codec))
    first = decoded(batch)
    assert first == decoded(batch)  # the decompressed section is kept and re-read
    assert first == [(i, ts, k, v, h) for i, (ts, k, v, h) in enumerate(rows)]


def test_timestamps_before_the_first_and_missing() -> None:
    rows = [(BASE_TS, b"a", b"1", []), (BASE_TS - 10_000, b"b", b"2", []),
            (BASE_TS + 3, b"c", b"3", [])]
    batch = read_batch(build(rows))
    assert [r.timestamp for r in batch] == [BASE_TS, BASE_TS - 10_000, BASE_TS + 3]
    assert batch.max_timestamp == BASE_TS + 3
    no_ts = read_batch(build([(None, b"a", b"1", [])]))
    assert no_ts.first_timestamp == no_ts.max_timestamp == -1
    assert [r.timestamp for r in no_ts] == [-1]
    with pytest.raises(IllegalArgumentError):
        RecordBatchBuilder().append(-5, None, b"x")


def test_log_append_time_gives_every_record_the_max_timestamp() -> None:
    rows = [(BASE_TS + i, None, b"v", []) for i in range(3)]
    batch = read_batch(build(rows, timestamp_type=TimestampType.LOG_APPEND_TIME))
    assert batch.timestamp_type == TimestampType.LOG_APPEND_TIME
    assert [r.timestamp for r in batch] == [BASE_TS + 2] * 3


def test_producer_state_set_late_and_rewritten_after_build() -> None:
    builder = RecordBatchBuilder(compression=Compression.LZ4, is_transactional=True)
    for i in range(4):
        builder.append(BASE_TS, None, b"v%d" % i)
    builder.set_producer_state(7001, 3, 42)
    batch = read_batch(builder.build())
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (7001, 3, 42)
    assert batch.is_transactional and not batch.is_control
    assert batch.last_sequence == 45
    # a retry under a new epoch rewrites only the header, and the CRC follows
    builder.set_producer_state(7001, 4, 0)
    again = read_batch(builder.build())
    assert (again.producer_epoch, again.base_sequence) == (4, 0)
    assert decoded(again) == decoded(batch)
    with pytest.raises(IllegalStateError):
        builder.append(BASE_TS, None, b"late")


def test_sequence_wraps_at_int32_max() -> None:
    builder = RecordBatchBuilder(producer_id=1, producer_epoch=0, base_sequence=2**31 - 2)
    for _ in range(4):
        builder.append(BASE_TS, None, b"v")
    assert read_batch(builder.build()).last_sequence == 1


@pytest.mark.parametrize("kind", [ControlRecordType.COMMIT, ControlRecordType.ABORT])
def test_control_batches(kind) -> None:
    data = build_control_batch(kind, producer_id=99, producer_epoch=5, coordinator_epoch=17,
                               timestamp_ms=BASE_TS, base_offset=1234)
    batch = read_batch(data)
    assert batch.is_control and batch.is_transactional
    assert (batch.base_offset, batch.producer_id, batch.producer_epoch) == (1234, 99, 5)
    (record,) = list(batch)
    assert record.key == bytes([0, 0, 0, int(kind)])
    assert record.value == b"\x00\x00\x00\x00\x00\x11"
    marker = ControlRecord.from_batch(batch)
    assert marker == ControlRecord(0, kind, 17)
    assert marker.is_commit == (kind == ControlRecordType.COMMIT)
    assert marker.is_abort == (kind == ControlRecordType.ABORT)


def test_control_record_of_an_unknown_type_keeps_its_number() -> None:
    marker = ControlRecord.decode(b"\x00\x00\x00\x63", None)
    assert marker.type == 99 and marker.coordinator_epoch == -1


def test_append_reports_full_but_always_takes_the_first_record() -> None:
    builder = RecordBatchBuilder(batch_size=500)
    assert builder.append(BASE_TS, None, b"x" * 2000) == 0  # oversized, alone
    assert builder.append(BASE_TS, None, b"y") is None
    assert builder.record_count == 1
    small = RecordBatchBuilder(batch_size=300)
    deltas = []
    while (delta := small.append(BASE_TS, b"k", b"v" * 20)) is not None:
        deltas.append(delta)
    assert deltas == list(range(len(deltas)))
    data = small.build()
    assert len(data) == small.estimated_size <= 300
    assert len(data) + 26 > 300  # one more record would not have fitted


def test_estimated_size_is_exact_uncompressed_and_ratio_scaled_compressed() -> None:
    plain = RecordBatchBuilder()
    for i in range(50):
        plain.append(BASE_TS + i, b"key", b"value-%d" % i, [("h", b"1")])
        assert plain.estimated_size == plain.uncompressed_size
    assert len(plain.build()) == plain.estimated_size
    packed = RecordBatchBuilder(compression=Compression.GZIP, compression_ratio_estimate=0.5)
    for i in range(50):
        packed.append(BASE_TS + i, b"key", b"value-%d" % i * 5)
    records = packed.uncompressed_size - 61
    assert packed.estimated_size == 61 + int(records * 0.5 * 1.05)
    size = len(packed.build())
    assert packed.estimated_size == size
    assert packed.compression_ratio == pytest.approx((size - 61) / records)
    assert packed.compression_ratio < 0.5


def test_estimate_size_in_bytes_bounds_a_single_record_batch() -> None:
    for key, value, hdrs in [(None, None, []), (b"k" * 300, b"v" * 20_000, [("a", b"b")])]:
        builder = RecordBatchBuilder()
        builder.append(BASE_TS, key, value, hdrs)
        bound = RecordBatchBuilder.estimate_size_in_bytes(key, value, hdrs)
        assert len(builder.build()) <= bound <= len(builder.build()) + 16


def test_compression_ratio_estimator_rises_fast_and_falls_slowly() -> None:
    est = CompressionRatioEstimator()
    assert est.estimate("t", Compression.LZ4) == 1.0
    assert est.observe("t", Compression.LZ4, 0.3) == pytest.approx(0.995)
    for _ in range(200):
        est.observe("t", Compression.LZ4, 0.3)
    assert est.estimate("t", Compression.LZ4) == pytest.approx(0.3)
    assert est.observe("t", Compression.LZ4, 0.31) == pytest.approx(0.35)
    assert est.observe("t", Compression.LZ4, 0.9) == pytest.approx(0.9)
    assert est.estimate("other", Compression.LZ4) == 1.0
    assert est.estimate("t", Compression.NONE) == 1.0
    est.reset("t")
    assert est.estimate("t", Compression.LZ4) == 1.0


def test_bad_builder_input_raises_typed_errors() -> None:
    with pytest.raises(IllegalArgumentError):
        RecordBatchBuilder(compression=9)
    builder = RecordBatchBuilder()
    with pytest.raises(IllegalArgumentError):
        builder.append(BASE_TS, None, "text is not bytes")  # type: ignore[arg-type]
    with pytest.raises(IllegalArgumentError):
        builder.append(BASE_TS, None, b"v", [(b"key-not-str", b"v")])  # type: ignore[list-item]
    with pytest.raises(IllegalArgumentError):
        builder.append(BASE_TS, None, b"v", [("k", "str value")])  # type: ignore[list-item]
    assert builder.record_count == 0  # failed appends leave nothing behind
    with pytest.raises(IllegalStateError):
        builder.build()


def test_header_parse_matches_batch_fields() -> None:
    data = build([(BASE_TS, b"k", b"v", [])], producer_id=5, producer_epoch=1, base_sequence=9,
                 base_offset=77, partition_leader_epoch=3)
    header = read_batch_header(memoryview(data))
    batch = read_batch(data)
    assert header.base_offset == batch.base_offset == 77
    assert header.partition_leader_epoch == 3
    assert header.batch_length == len(data) - 12
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (5, 1, 9)
    assert header.crc == batch.crc and header.record_count == 1
