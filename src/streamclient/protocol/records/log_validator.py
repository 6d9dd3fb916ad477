"""Broker-side batch work: stamping a produced batch for the log.

Produce requests (v3 and later) carry exactly one magic-2 batch per partition.  The
broker validates it (``streamclient.broker.log.batches``, which maps each failure to its
Kafka error code), then writes the offsets it assigns and, for topics with
``message.timestamp.type=LogAppendTime``, the append time:

- ``baseOffset`` and ``partitionLeaderEpoch`` sit before the CRC-covered range, so
  :func:`set_base_offset` and :func:`set_partition_leader_epoch` patch them in place
  and the CRC stays valid;
- the timestamp type bit and ``maxTimestamp`` are covered, so
  :func:`set_log_append_time` recomputes the CRC (records keep their own deltas; readers
  give every record ``maxTimestamp`` when the bit is set).
"""

from __future__ import annotations

import struct

from crc32c import crc32c

from streamclient.errors import CorruptRecordException
from streamclient.protocol.records.batch import (
    ATTR_TIMESTAMP_TYPE,
    CRC_OFFSET,
    CRC_START,
    LOG_OVERHEAD,
    MAX_TIMESTAMP_OFFSET,
    PARTITION_LEADER_EPOCH_OFFSET,
    read_batch_header,
)

__all__ = [
    "set_base_offset",
    "set_log_append_time",
    "set_partition_leader_epoch",
]

_INT64 = struct.Struct(">q")
_INT32 = struct.Struct(">i")
_UINT32 = struct.Struct(">I")
_INT16 = struct.Struct(">h")
_ATTRIBUTES_OFFSET = CRC_START


def set_base_offset(buf: bytearray | memoryview, base_offset: int, pos: int = 0) -> None:
    """Write the batch's base offset in place (outside the CRC: it stays valid)."""
    _INT64.pack_into(buf, pos, base_offset)


def set_partition_leader_epoch(buf: bytearray | memoryview, epoch: int, pos: int = 0) -> None:
    """Write the partition leader epoch in place (outside the CRC: it stays valid)."""
    _INT32.pack_into(buf, pos + PARTITION_LEADER_EPOCH_OFFSET, epoch)


def set_log_append_time(buf: bytearray | memoryview, timestamp_ms: int, pos: int = 0) -> None:
    """Mark the batch LogAppendTime with ``timestamp_ms`` as its max timestamp; new CRC."""
    header = read_batch_header(buf, pos)
    end = pos + header.batch_length + LOG_OVERHEAD
    if end > len(buf):
        raise CorruptRecordException("record batch is truncated")
    _INT16.pack_into(buf, pos + _ATTRIBUTES_OFFSET, header.attributes | ATTR_TIMESTAMP_TYPE)
    _INT64.pack_into(buf, pos + MAX_TIMESTAMP_OFFSET, timestamp_ms)
    with memoryview(buf) as view:
        _UINT32.pack_into(buf, pos + CRC_OFFSET, crc32c(view[pos + CRC_START:end]))
