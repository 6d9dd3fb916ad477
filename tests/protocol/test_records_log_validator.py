"""Broker-side batch helpers: produce validation, base offset / leader epoch stamping,
LogAppendTime, and header-only parsing."""

from __future__ import annotations

import struct

import pytest
from crc32c import crc32c
from kafka.record.default_records import DefaultRecordBatch as KpBatch
from kafka.record.default_records import DefaultRecordBatchBuilder as KpBuilder

from streamclient.errors import CorruptRecordException, UnsupportedCodecError
from streamclient.protocol.records import (
    Compression,
    ControlRecordType,
    LegacyRecordBatchBuilder,
    RecordBatchBuilder,
    TimestampType,
    build_control_batch,
    iter_batches,
    read_batch,
    read_batch_header,
    set_base_offset,
    set_log_append_time,
    set_partition_leader_epoch,
    validate_produce_batch,
)

BASE_TS = 1_700_000_000_000


def batch(codec: Compression = Compression.NONE, count: int = 10) -> bytes:
    builder = RecordBatchBuilder(compression=codec, producer_id=3, producer_epoch=0,
                                 base_sequence=0)
    for i in range(count):
        builder.append(BASE_TS + i, b"k%d" % i, b"v%d" % i)
    return builder.build()


def with_crc(data: bytearray) -> bytes:
    struct.pack_into(">I", data, 17, crc32c(bytes(data[21:])))
    return bytes(data)


@pytest.mark.parametrize("codec", list(Compression))
def test_validate_produce_batch_accepts_good_batches(codec: Compression) -> None:
    data = batch(codec)
    checked = validate_produce_batch(data)
    assert checked.record_count == 10 and checked.compression == codec
    assert [r.value for r in checked] == [b"v%d" % i for i in range(10)]


def test_validate_produce_batch_rejects_bad_input() -> None:
    good = batch()
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 1
    count_off = bytearray(good)
    struct.pack_into(">i", count_off, 57, 9)
    delta_off = bytearray(good)
    struct.pack_into(">i", delta_off, 23, 12)
    legacy = LegacyRecordBatchBuilder(1)
    legacy.append(0, BASE_TS, None, b"v")
    for bad in (good + good, good[:-3], bytes(bad_crc), with_crc(count_off),
                with_crc(delta_off), legacy.build(), b"", good + b"\x00"):
        with pytest.raises(CorruptRecordException):
            validate_produce_batch(bad)
    unknown = bytearray(good)
    struct.pack_into(">h", unknown, 21, 6)
    with pytest.raises(UnsupportedCodecError):
        validate_produce_batch(with_crc(unknown))


def test_validate_produce_batch_rejects_offset_gaps() -> None:
    # kafka-python lets a caller pick offsets; 0, 2, 2 keeps lastOffsetDelta == count - 1
    builder = KpBuilder(magic=2, compression_type=0, is_transactional=False, producer_id=-1,
                        producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    for offset in (0, 2, 2):
        builder.append(offset, BASE_TS, None, b"v", [])
    data = bytes(builder.build())
    assert read_batch(data).validate_crc()
    with pytest.raises(CorruptRecordException, match="out of sequence"):
        validate_produce_batch(data)


@pytest.mark.parametrize("codec", [Compression.NONE, Compression.SNAPPY])
def test_base_offset_and_leader_epoch_rewrite_keep_the_crc(codec: Compression) -> None:
    data = bytearray(batch(codec))
    crc_before = read_batch(bytes(data)).crc
    set_base_offset(data, 5_000_000_000)
    set_partition_leader_epoch(data, 42)
    result = read_batch(bytes(data))  # validates the CRC
    assert result.crc == crc_before
    assert result.base_offset == 5_000_000_000 and result.partition_leader_epoch == 42
    assert [r.offset for r in result] == list(range(5_000_000_000, 5_000_000_010))


def test_rewrites_at_a_position_inside_a_log_buffer() -> None:
    first, second = batch(), batch(Compression.GZIP)
    log = bytearray(first + second)
    view = memoryview(log)
    set_base_offset(view, 10, pos=len(first))
    set_log_append_time(view, BASE_TS + 999, pos=len(first))
    view.release()
    header = read_batch_header(log, len(first))
    assert header.base_offset == 10 and header.max_timestamp == BASE_TS + 999
    batches = list(iter_batches(bytes(log)))
    assert [b.base_offset for b in batches] == [0, 10]
    assert batches[0].timestamp_type == TimestampType.CREATE_TIME


@pytest.mark.parametrize("codec", [Compression.NONE, Compression.LZ4])
def test_log_append_time_recomputes_the_crc(codec: Compression) -> None:
    data = bytearray(batch(codec))
    set_log_append_time(data, BASE_TS + 10_000)
    result = read_batch(bytes(data))
    assert result.validate_crc()
    assert result.timestamp_type == TimestampType.LOG_APPEND_TIME
    assert result.first_timestamp == BASE_TS  # unchanged; only the max moves
    assert {r.timestamp for r in result} == {BASE_TS + 10_000}
    theirs = KpBatch(bytes(data))
    assert theirs.validate_crc() and {r.timestamp for r in theirs} == {BASE_TS + 10_000}


def test_read_batch_header_does_not_touch_records() -> None:
    data = bytearray(batch())
    data[70:] = b"\xff" * (len(data) - 70)  # records destroyed, header intact
    header = read_batch_header(bytes(data))
    assert (header.magic, header.record_count, header.producer_id) == (2, 10, 3)
    with pytest.raises(CorruptRecordException):
        read_batch_header(bytes(data[:60]))
    data[16] = 1
    with pytest.raises(CorruptRecordException):
        read_batch_header(bytes(data))


def test_control_batch_passes_validation_and_is_flagged() -> None:
    data = build_control_batch(ControlRecordType.ABORT, producer_id=1, producer_epoch=2,
                               coordinator_epoch=3, timestamp_ms=BASE_TS)
    checked = validate_produce_batch(data)
    assert checked.is_control  # the Produce handler refuses these from clients
