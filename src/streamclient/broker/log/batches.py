"""The log's view of incoming batches: header checks, full validation, offset stamping.

Header fields are read straight from their fixed positions into the protocol layer's
``BatchHeader`` (the log needs a dozen integers per append and nothing else), so each
failed check can carry its own Kafka error code; record-level work — decompression,
record framing, control records — goes through ``streamclient.protocol.records``.
"""

from __future__ import annotations

import struct

import crc32c

from streamclient.broker.log.config import LogConfig
from streamclient.broker.log.results import AppendError, Err
from streamclient.errors import KafkaError
from streamclient.protocol.records import (
    ControlRecord,
    ControlRecordType,
    RecordBatch,
    build_control_batch,
    set_base_offset,
    set_log_append_time,
    set_partition_leader_epoch,
)
from streamclient.protocol.records.batch import (
    CRC_START,
    HEADER,
    HEADER_SIZE,
    LOG_OVERHEAD,
    MAGIC_OFFSET,
    BatchHeader,
)


def read_header(data: bytes | bytearray | memoryview) -> BatchHeader:
    """The header of the batch at the start of ``data``, unchecked (the log's own bytes,
    or bytes :func:`parse_single_batch` is about to check field by field)."""
    return BatchHeader._make(HEADER.unpack_from(data, 0))


def parse_single_batch(data: bytes | bytearray | memoryview, max_message_bytes: int) -> BatchHeader:
    """Check that ``data`` is exactly one sound magic-2 batch and return its header.

    Produce v3+ carries exactly one magic-2 batch per partition; Kafka 4 answers
    INVALID_RECORD for anything else (older magics included), so do we.
    """
    size = len(data)
    if size < LOG_OVERHEAD + 5:
        raise AppendError(Err.CORRUPT_MESSAGE, f"{size} bytes cannot hold a record batch")
    magic = data[MAGIC_OFFSET]
    if magic != 2:
        raise AppendError(Err.INVALID_RECORD,
                          f"produce requests must carry magic 2 record batches, got magic {magic}")
    if size < HEADER_SIZE:
        raise AppendError(Err.CORRUPT_MESSAGE, f"{size} bytes cannot hold a batch header")
    header = read_header(data)
    whole = LOG_OVERHEAD + header.batch_length
    if header.batch_length < HEADER_SIZE - LOG_OVERHEAD or whole > size:
        raise AppendError(Err.CORRUPT_MESSAGE,
                          f"batch length {header.batch_length} does not match the {size} bytes sent")
    if whole < size:
        raise AppendError(Err.INVALID_RECORD, "a produce request must carry exactly one batch")
    if size > max_message_bytes:
        raise AppendError(Err.MESSAGE_TOO_LARGE,
                          f"batch of {size} bytes exceeds max.message.bytes={max_message_bytes}")
    crc = crc32c.crc32c(memoryview(data)[CRC_START:])
    if crc != header.crc:
        raise AppendError(Err.CORRUPT_MESSAGE,
                          f"batch CRC {header.crc:#010x} does not match its contents ({crc:#010x})")
    if header.record_count <= 0 and not header.is_control:
        raise AppendError(Err.INVALID_RECORD, "a batch must hold at least one record")
    if header.record_count != header.last_offset_delta + 1:
        raise AppendError(
            Err.INVALID_RECORD,
            f"record count {header.record_count} does not match last offset delta "
            f"{header.last_offset_delta}")
    if header.compression > 4:
        raise AppendError(Err.UNSUPPORTED_COMPRESSION_TYPE,
                          f"unknown compression codec {header.compression}")
    return header


def validate_records(header: BatchHeader, data: bytes | bytearray | memoryview,
                     config: LogConfig, now_ms: int) -> None:
    """Decode every record: framing, offset deltas in order, timestamps within bounds."""
    check_times = not config.log_append_time
    errors: list[tuple[int, str]] = []
    index = -1
    try:
        batch = RecordBatch(bytes(data))
        for index, record in enumerate(batch):
            if record.offset - header.base_offset != index:
                raise AppendError(Err.INVALID_RECORD,
                                  f"record {index} has offset delta {record.offset - header.base_offset}")
            if check_times:
                ts = record.timestamp
                if now_ms - ts > config.timestamp_before_max_ms or ts - now_ms > config.timestamp_after_max_ms:
                    errors.append((index, f"timestamp {ts} is out of the accepted range around {now_ms}"))
    except AppendError:
        raise
    except (KafkaError, ValueError, IndexError, struct.error) as exc:
        raise AppendError(Err.CORRUPT_MESSAGE, f"records do not decode: {exc}") from None
    if errors:
        raise AppendError(Err.INVALID_TIMESTAMP, errors[0][1], errors)
    if index + 1 != header.record_count:
        raise AppendError(Err.INVALID_RECORD,
                          f"batch holds {index + 1} records, its header says {header.record_count}")


def stamp(data: bytes | bytearray | memoryview, *, base_offset: int, leader_epoch: int,
          log_append_time: int | None) -> bytes:
    """A copy of ``data`` with its offsets, leader epoch and (LogAppendTime) timestamp set."""
    out = bytearray(data)
    set_base_offset(out, base_offset)
    set_partition_leader_epoch(out, leader_epoch)
    if log_append_time is not None:
        set_log_append_time(out, log_append_time)
    return bytes(out)


def with_max_timestamp(header: BatchHeader, max_timestamp: int) -> BatchHeader:
    return header if header.max_timestamp == max_timestamp else header._replace(max_timestamp=max_timestamp)


def record_timestamps(data: bytes) -> list[tuple[int, int]]:
    """(offset, timestamp) of every record of one stored batch."""
    header = read_header(data)
    if header.is_log_append_time or header.is_control:
        return [(header.base_offset, header.max_timestamp)]
    return [(r.offset, r.timestamp) for r in RecordBatch(data)]


def control_batch(producer_id: int, producer_epoch: int, *, commit: bool, coordinator_epoch: int,
                  timestamp: int, base_offset: int, leader_epoch: int) -> bytes:
    kind = ControlRecordType.COMMIT if commit else ControlRecordType.ABORT
    return build_control_batch(kind, producer_id=producer_id, producer_epoch=producer_epoch,
                               coordinator_epoch=coordinator_epoch, timestamp_ms=timestamp,
                               base_offset=base_offset, partition_leader_epoch=leader_epoch)


def control_marker(data: bytes) -> ControlRecord:
    """The COMMIT/ABORT record of a stored control batch."""
    return ControlRecord.from_batch(RecordBatch(data))
