"""Broker-side batch helpers: base offset / leader epoch stamping, LogAppendTime, and
header-only parsing (produce validation itself lives in ``broker.log.batches``)."""

from __future__ import annotations

import struct

import pytest
from crc32c import crc32c
from kafka.record.default_records import DefaultRecordBatch as KpBatch

from streamclient.errors import CorruptRecordException
from streamclient.protocol.records import (
    Compression,
    ControlRecordType,
    RecordBatchBuilder,
    TimestampType,
    build_control_batch,
    iter_batches,
    read_batch,
    read_batch_header,
    set_base_offset,
    set_log_append_time,
    set_partition_leader_epoch,
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


def test_control_batch_header_is_flagged() -> None:
    data = build_control_batch(ControlRecordType.ABORT, producer_id=1, producer_epoch=2,
                               coordinator_epoch=3, timestamp_ms=BASE_TS)
    checked = read_batch(data)
    checked.validate_crc()
    assert checked.is_control  # the Produce handler refuses these from clients
