"""Keys and values of the records in ``__consumer_offsets``.

The layouts are Kafka's (``OffsetCommitKey`` v1, ``OffsetCommitValue`` v3, ``GroupMetadataKey``
v2, ``GroupMetadataValue`` v3), so tools that read a real broker's offsets topic can read ours.
A record with a null value is a tombstone: the offset (or the group) was deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamclient.broker.groups.offsets import OffsetAndMetadata
from streamclient.errors import KafkaProtocolError
from streamclient.protocol.primitives import (
    Reader,
    write_array_length,
    write_bytes,
    write_int16,
    write_int32,
    write_int64,
    write_string,
)

__all__ = [
    "GroupMetadataKey",
    "GroupMetadataValue",
    "MemberMetadataValue",
    "OffsetCommitKey",
    "decode_group_value",
    "decode_key",
    "decode_offset_value",
    "encode_group_key",
    "encode_group_value",
    "encode_offset_key",
    "encode_offset_value",
]

_OFFSET_KEY_VERSION = 1
_GROUP_KEY_VERSION = 2
_OFFSET_VALUE_VERSION = 3
_GROUP_VALUE_VERSION = 3


@dataclass(frozen=True)
class OffsetCommitKey:
    group: str
    topic: str
    partition: int


@dataclass(frozen=True)
class GroupMetadataKey:
    group: str


@dataclass(frozen=True)
class MemberMetadataValue:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    subscription: bytes
    assignment: bytes


@dataclass(frozen=True)
class GroupMetadataValue:
    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    current_state_timestamp_ms: int
    members: list[MemberMetadataValue]


def encode_offset_key(group: str, topic: str, partition: int) -> bytes:
    buf = bytearray()
    write_int16(buf, _OFFSET_KEY_VERSION)
    write_string(buf, group)
    write_string(buf, topic)
    write_int32(buf, partition)
    return bytes(buf)


def encode_group_key(group: str) -> bytes:
    buf = bytearray()
    write_int16(buf, _GROUP_KEY_VERSION)
    write_string(buf, group)
    return bytes(buf)


def decode_key(data: bytes | memoryview) -> OffsetCommitKey | GroupMetadataKey:
    r = Reader(data)
    version = r.int16()
    if version in (0, 1):
        return OffsetCommitKey(r.string(), r.string(), r.int32())
    if version == 2:
        return GroupMetadataKey(r.string())
    raise KafkaProtocolError(f"unknown __consumer_offsets key version {version}")


def encode_offset_value(value: OffsetAndMetadata) -> bytes:
    buf = bytearray()
    write_int16(buf, _OFFSET_VALUE_VERSION)
    write_int64(buf, value.offset)
    write_int32(buf, value.leader_epoch)
    write_string(buf, value.metadata)
    write_int64(buf, value.commit_timestamp_ms)
    return bytes(buf)


def decode_offset_value(data: bytes | memoryview) -> OffsetAndMetadata:
    r = Reader(data)
    version = r.int16()
    if version not in (0, 1, 2, 3):
        raise KafkaProtocolError(f"unknown OffsetCommitValue version {version}")
    offset = r.int64()
    leader_epoch = r.int32() if version >= 3 else -1
    metadata = r.string()
    commit_ts = r.int64()
    return OffsetAndMetadata(offset, leader_epoch, metadata, commit_ts)


def encode_group_value(value: GroupMetadataValue) -> bytes:
    buf = bytearray()
    write_int16(buf, _GROUP_VALUE_VERSION)
    write_string(buf, value.protocol_type)
    write_int32(buf, value.generation)
    write_string(buf, value.protocol)
    write_string(buf, value.leader)
    write_int64(buf, value.current_state_timestamp_ms)
    write_array_length(buf, len(value.members))
    for m in value.members:
        write_string(buf, m.member_id)
        write_string(buf, m.group_instance_id)
        write_string(buf, m.client_id)
        write_string(buf, m.client_host)
        write_int32(buf, m.rebalance_timeout_ms)
        write_int32(buf, m.session_timeout_ms)
        write_bytes(buf, m.subscription)
        write_bytes(buf, m.assignment)
    return bytes(buf)


def decode_group_value(data: bytes | memoryview) -> GroupMetadataValue:
    r = Reader(data)
    version = r.int16()
    if version not in (0, 1, 2, 3):
        raise KafkaProtocolError(f"unknown GroupMetadataValue version {version}")
    protocol_type = r.string()
    generation = r.int32()
    protocol = r.nullable_string()
    leader = r.nullable_string()
    state_ts = r.int64() if version >= 2 else -1
    members = r.array(lambda rr: _read_member(rr, version)) or []
    return GroupMetadataValue(protocol_type, generation, protocol, leader, state_ts, members)


def _read_member(r: Reader, version: int) -> MemberMetadataValue:
    member_id = r.string()
    instance_id = r.nullable_string() if version >= 3 else None
    client_id = r.string()
    client_host = r.string()
    rebalance_timeout = r.int32() if version >= 1 else -1
    session_timeout = r.int32()
    subscription = bytes(r.bytes_())
    assignment = bytes(r.bytes_())
    return MemberMetadataValue(
        member_id, instance_id, client_id, client_host, rebalance_timeout, session_timeout,
        subscription, assignment,
    )
