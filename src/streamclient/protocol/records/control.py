"""Control records: the transaction markers (KIP-98) a control batch carries.

A control batch has the control and transactional attribute bits set and holds one
record.  Its key is ``version int16 (0)`` + ``type int16`` (0 abort, 1 commit; KRaft adds
more types, which consumers skip); for abort and commit the value is ``version int16
(0)`` + ``coordinator epoch int32``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from streamclient.errors import CorruptRecordException
from streamclient.protocol.records.batch import Record, RecordBatch
from streamclient.protocol.records.builder import RecordBatchBuilder

__all__ = [
    "ControlRecord",
    "ControlRecordType",
    "build_control_batch",
    "encode_control_key",
    "encode_control_value",
]

_KEY = struct.Struct(">hh")
_VALUE = struct.Struct(">hi")


class ControlRecordType(IntEnum):
    ABORT = 0
    COMMIT = 1
    LEADER_CHANGE = 2
    SNAPSHOT_HEADER = 3
    SNAPSHOT_FOOTER = 4


@dataclass(frozen=True, slots=True)
class ControlRecord:
    """A decoded control record; ``type`` is an ``int`` when Kafka adds types we do not know."""

    version: int
    type: ControlRecordType | int
    coordinator_epoch: int = -1

    @property
    def is_abort(self) -> bool:
        return self.type == ControlRecordType.ABORT

    @property
    def is_commit(self) -> bool:
        return self.type == ControlRecordType.COMMIT

    @classmethod
    def decode(cls, key: bytes | None, value: bytes | None) -> ControlRecord:
        if key is None or len(key) < _KEY.size:
            raise CorruptRecordException("control record key is missing or shorter than 4 bytes")
        version, type_id = _KEY.unpack_from(key, 0)
        try:
            kind: ControlRecordType | int = ControlRecordType(type_id)
        except ValueError:
            kind = type_id
        epoch = -1
        if kind in (ControlRecordType.ABORT, ControlRecordType.COMMIT):
            if value is None or len(value) < _VALUE.size:
                raise CorruptRecordException("transaction marker value is shorter than 6 bytes")
            epoch = _VALUE.unpack_from(value, 0)[1]
        return cls(version, kind, epoch)

    @classmethod
    def from_record(cls, record: Record) -> ControlRecord:
        return cls.decode(record.key, record.value)

    @classmethod
    def from_batch(cls, batch: RecordBatch) -> ControlRecord:
        """The (single) control record of a control batch."""
        if not batch.is_control:
            raise CorruptRecordException("not a control batch")
        for record in batch:
            return cls.from_record(record)
        raise CorruptRecordException("control batch holds no record")


def encode_control_key(kind: ControlRecordType | int) -> bytes:
    return _KEY.pack(0, kind)


def encode_control_value(coordinator_epoch: int) -> bytes:
    return _VALUE.pack(0, coordinator_epoch)


def build_control_batch(
    kind: ControlRecordType | int,
    *,
    producer_id: int,
    producer_epoch: int,
    coordinator_epoch: int,
    timestamp_ms: int,
    base_offset: int = 0,
    partition_leader_epoch: int = -1,
) -> bytes:
    """A transaction marker batch (commit or abort) as the coordinator writes it."""
    builder = RecordBatchBuilder(
        is_transactional=True, producer_id=producer_id, producer_epoch=producer_epoch,
        is_control=True, base_offset=base_offset, partition_leader_epoch=partition_leader_epoch)
    builder.append(timestamp_ms, encode_control_key(kind), encode_control_value(coordinator_epoch))
    return builder.build()
