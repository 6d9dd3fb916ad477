"""A lazy reader over one record batch (magic 2, KIP-98 format).

Layout (big-endian; the CRC-32C covers ``attributes`` to the end of the batch)::

    0 baseOffset int64        8 batchLength int32     12 partitionLeaderEpoch int32
   16 magic int8             17 crc uint32            21 attributes int16
   23 lastOffsetDelta int32  27 firstTimestamp int64  35 maxTimestamp int64
   43 producerId int64       51 producerEpoch int16   53 baseSequence int32
   57 recordCount int32      61 records...

Constructing a :class:`RecordBatch` unpacks the 61-byte header with one precompiled
struct and nothing else.  Records are decoded only when the batch is iterated; a
compressed records section is decompressed once, on the first iteration, and kept.
Records are :class:`Record` named tuples (building one costs a tuple), and key and value
are ``bytes`` sliced from one copy of the records section.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from enum import IntEnum
from typing import NamedTuple

from crc32c import crc32c

from streamclient.errors import CorruptRecordException
from streamclient.protocol.records.compression import Compression, codec_for, decompress
from streamclient.protocol.records.varint import decode_uvarint

__all__ = [
    "ATTR_COMPRESSION_MASK",
    "ATTR_CONTROL",
    "ATTR_DELETE_HORIZON",
    "ATTR_TIMESTAMP_TYPE",
    "ATTR_TRANSACTIONAL",
    "CRC_OFFSET",
    "CRC_START",
    "EMPTY_HEADERS",
    "HEADER",
    "HEADER_SIZE",
    "LENGTH_OFFSET",
    "LOG_OVERHEAD",
    "MAX_TIMESTAMP_OFFSET",
    "NO_TIMESTAMP",
    "BatchHeader",
    "Record",
    "RecordBatch",
    "TimestampType",
    "decode_headers",
    "decode_records",
    "read_batch_header",
]

HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE = HEADER.size  # 61
LOG_OVERHEAD = 12  # baseOffset + batchLength: the bytes batchLength does not count
LENGTH_OFFSET = 8
PARTITION_LEADER_EPOCH_OFFSET = 12
MAGIC_OFFSET = 16
CRC_OFFSET = 17
CRC_START = 21  # attributes: the first byte the CRC covers
ATTRIBUTES_OFFSET = 21
MAX_TIMESTAMP_OFFSET = 35
PRODUCER_ID_OFFSET = 43
RECORD_COUNT_OFFSET = 57

ATTR_COMPRESSION_MASK = 0x07
ATTR_TIMESTAMP_TYPE = 0x08
ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20
ATTR_DELETE_HORIZON = 0x40  # KIP-534: firstTimestamp holds the delete horizon

NO_TIMESTAMP = -1

#: the headers of a record without any (shared: a record's headers are never mutated)
EMPTY_HEADERS: tuple[tuple[str, bytes | None], ...] = ()


class TimestampType(IntEnum):
    NO_TIMESTAMP_TYPE = -1  # magic 0 messages
    CREATE_TIME = 0
    LOG_APPEND_TIME = 1


class Record(NamedTuple):
    """One decoded record; ``headers`` is a tuple of ``(str, bytes | None)`` pairs."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


class BatchHeader(NamedTuple):
    """The fixed 61-byte header of a magic-2 batch, field by field."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    first_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int

    @property
    def compression(self) -> int:
        return self.attributes & ATTR_COMPRESSION_MASK

    @property
    def is_log_append_time(self) -> bool:
        return bool(self.attributes & ATTR_TIMESTAMP_TYPE)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & ATTR_TRANSACTIONAL)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & ATTR_CONTROL)


def read_batch_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """The header fields of the magic-2 batch at ``pos``, without looking at its records."""
    if len(buf) - pos < HEADER_SIZE:
        raise CorruptRecordException(
            f"record batch header needs {HEADER_SIZE} bytes, {len(buf) - pos} available")
    header = BatchHeader._make(HEADER.unpack_from(buf, pos))
    if header.magic != 2:
        raise CorruptRecordException(f"record batch magic is {header.magic}, expected 2")
    return header


class RecordBatch:
    """One magic-2 batch over the bytes of exactly that batch (a view, not a copy).

    ``data`` must begin with the batch; bytes after ``batch_length + 12`` are ignored.  A
    buffer shorter than the batch it announces raises ``CorruptRecordException``.
    """

    __slots__ = (
        "_data",
        "_records",
        "attributes",
        "base_offset",
        "base_sequence",
        "batch_length",
        "crc",
        "first_timestamp",
        "last_offset_delta",
        "magic",
        "max_timestamp",
        "partition_leader_epoch",
        "producer_epoch",
        "producer_id",
        "record_count",
    )

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        view = data if isinstance(data, memoryview) else memoryview(data)
        if len(view) < HEADER_SIZE:
            raise CorruptRecordException(
                f"record batch needs at least {HEADER_SIZE} bytes, got {len(view)}")
        (self.base_offset, self.batch_length, self.partition_leader_epoch, self.magic,
         self.crc, self.attributes, self.last_offset_delta, self.first_timestamp,
         self.max_timestamp, self.producer_id, self.producer_epoch, self.base_sequence,
         self.record_count) = HEADER.unpack_from(view, 0)
        if self.magic != 2:
            raise CorruptRecordException(f"record batch magic is {self.magic}, expected 2")
        size = self.batch_length + LOG_OVERHEAD
        if size < HEADER_SIZE:
            raise CorruptRecordException(
                f"record batch length {self.batch_length} is shorter than its header")
        if size > len(view):
            raise CorruptRecordException(
                f"record batch of {size} bytes is truncated to {len(view)}")
        if self.record_count < 0:
            raise CorruptRecordException(f"record batch count {self.record_count} is negative")
        self._data = view[:size]
        self._records: bytes | None = None

    # --- header-derived properties ---------------------------------------------------

    @property
    def compression(self) -> Compression:
        return codec_for(self.attributes & ATTR_COMPRESSION_MASK)

    @property
    def timestamp_type(self) -> TimestampType:
        return TimestampType((self.attributes & ATTR_TIMESTAMP_TYPE) >> 3)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & ATTR_TRANSACTIONAL)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & ATTR_CONTROL)

    @property
    def has_delete_horizon(self) -> bool:
        return bool(self.attributes & ATTR_DELETE_HORIZON)

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def size_in_bytes(self) -> int:
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_sequence(self) -> int:
        """The sequence of the last record (wrapping at int32 max as Kafka's do), or -1."""
        if self.base_sequence < 0:
            return -1
        return (self.base_sequence + self.last_offset_delta) & 0x7FFFFFFF

    @property
    def data(self) -> memoryview:
        """The batch's bytes, exactly ``size_in_bytes`` of them."""
        return self._data

    def validate_crc(self) -> bool:
        """Whether the stored CRC-32C matches the bytes from ``attributes`` to the end."""
        return crc32c(self._data[CRC_START:]) == self.crc

    def ensure_valid_crc(self) -> None:
        if crc32c(self._data[CRC_START:]) != self.crc:
            raise CorruptRecordException(
                f"record batch at offset {self.base_offset} failed its CRC-32C check")

    # --- records -----------------------------------------------------------------------

    def records_data(self) -> bytes:
        """The uncompressed records section (decompressed once, then kept)."""
        records = self._records
        if records is None:
            codec = self.compression
            section = self._data[HEADER_SIZE:]
            records = bytes(section) if codec == Compression.NONE else decompress(codec, section)
            self._records = records
        return records

    def __iter__(self) -> Iterator[Record]:
        log_append = self.max_timestamp if self.attributes & ATTR_TIMESTAMP_TYPE else None
        return decode_records(self.records_data(), self.record_count, self.base_offset,
                              self.first_timestamp, log_append)

    def __len__(self) -> int:
        return self.record_count

    def __repr__(self) -> str:
        return (f"RecordBatch(base_offset={self.base_offset}, record_count={self.record_count}, "
                f"compression={self.attributes & ATTR_COMPRESSION_MASK}, "
                f"attributes={self.attributes:#x}, producer_id={self.producer_id}, "
                f"base_sequence={self.base_sequence}, size={self.size_in_bytes})")


def decode_records(data: bytes, count: int, base_offset: int, base_timestamp: int,
                   log_append_time: int | None) -> Iterator[Record]:
    """Yield ``count`` records from an uncompressed records section.

    A record that overruns its declared length or the section, a section that ends before
    ``count`` records or holds bytes after them, raises ``CorruptRecordException``.
    """
    # Hot loop: one-byte varints (and two-byte unsigned lengths) are decoded inline;
    # anything longer goes through decode_uvarint.  Locals only, no attribute lookups.
    # Short data surfaces as IndexError from data[pos]; the handler at the end (free in
    # 3.11 until raised) turns it into CorruptRecordException.
    new = tuple.__new__
    record_cls = Record
    read_uvarint = decode_uvarint
    empty = EMPTY_HEADERS
    end = len(data)
    pos = 0
    try:
        for _ in range(count):
            b = data[pos]
            if b < 0x80:
                length = b
                pos += 1
            else:
                b2 = data[pos + 1]
                if b2 < 0x80:
                    length = (b & 0x7F) | (b2 << 7)
                    pos += 2
                else:
                    length, pos = read_uvarint(data, pos)
            length = (length >> 1) ^ -(length & 1)
            record_end = pos + length
            if length <= 0 or record_end > end:
                raise CorruptRecordException(
                    f"record of length {length} at byte {pos} overruns the records section")
            pos += 1  # record attributes: unused by Kafka so far
            b = data[pos]
            if b < 0x80:
                ts_delta = (b >> 1) ^ -(b & 1)
                pos += 1
            else:
                ts_delta, pos = read_uvarint(data, pos)
                ts_delta = (ts_delta >> 1) ^ -(ts_delta & 1)
            b = data[pos]
            if b < 0x80:
                offset_delta = (b >> 1) ^ -(b & 1)
                pos += 1
            else:
                offset_delta, pos = read_uvarint(data, pos)
                offset_delta = (offset_delta >> 1) ^ -(offset_delta & 1)
            b = data[pos]
            if b < 0x80:
                size = (b >> 1) ^ -(b & 1)
                pos += 1
            else:
                size, pos = read_uvarint(data, pos)
                size = (size >> 1) ^ -(size & 1)
            if size < 0:
                key = None
            else:
                key = data[pos:pos + size]
                pos += size
            b = data[pos]
            if b < 0x80:
                size = (b >> 1) ^ -(b & 1)
                pos += 1
            else:
                b2 = data[pos + 1]
                if b2 < 0x80:
                    size = (b & 0x7F) | (b2 << 7)
                    pos += 2
                else:
                    size, pos = read_uvarint(data, pos)
                size = (size >> 1) ^ -(size & 1)
            if size < 0:
                value = None
            else:
                value = data[pos:pos + size]
                pos += size
            if data[pos] == 0:
                headers = empty
                pos += 1
            else:
                headers, pos = decode_headers(data, pos, record_end)
            if pos != record_end:
                raise CorruptRecordException(
                    f"record ending at byte {pos} declared its end at byte {record_end}")
            yield new(record_cls, (
                base_offset + offset_delta,
                base_timestamp + ts_delta if log_append_time is None else log_append_time,
                key, value, headers))
        if pos != end:
            raise CorruptRecordException(
                f"{end - pos} bytes remain after the {count} records the batch declares")
    except (IndexError, ValueError) as exc:
        raise CorruptRecordException(
            f"malformed record in batch at offset {base_offset}: {exc}") from exc


def decode_headers(data: bytes, pos: int, record_end: int
                   ) -> tuple[tuple[tuple[str, bytes | None], ...], int]:
    """The headers of the record ending at ``record_end``, starting with their count at
    ``pos``; returns them and the position after them."""
    count, pos = decode_uvarint(data, pos)
    count = (count >> 1) ^ -(count & 1)
    # every header takes at least two bytes, which bounds a corrupt count cheaply
    if count < 0 or pos + 2 * count > record_end:
        raise CorruptRecordException(f"record declares {count} headers it cannot hold")
    headers = []
    for _ in range(count):
        size, pos = decode_uvarint(data, pos)
        size = (size >> 1) ^ -(size & 1)
        if size < 0 or pos + size > record_end:
            raise CorruptRecordException(f"header key of length {size} at byte {pos} is invalid")
        # Java decodes header keys leniently (malformed UTF-8 becomes U+FFFD); so do we
        name = data[pos:pos + size].decode("utf-8", "replace")
        pos += size
        size, pos = decode_uvarint(data, pos)
        size = (size >> 1) ^ -(size & 1)
        if size < 0:
            value = None
        else:
            if pos + size > record_end:
                raise CorruptRecordException(f"header value of length {size} overruns its record")
            value = data[pos:pos + size]
            pos += size
        headers.append((name, value))
    return tuple(headers), pos
