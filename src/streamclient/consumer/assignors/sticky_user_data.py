"""The user data the sticky assignors send with a subscription.

These are not Kafka message schemas (there is no JSON for them) and carry no version
prefix, so they are written here with the protocol primitives:

- ``sticky`` (eager) sends its last assignment and generation, ``StickyAssignor``'s
  ``STICKY_ASSIGNOR_USER_DATA_V1``: ``[topic: string, partitions: [int32]] generation: int32``.
  V0 is the same without the generation.  A reader tries V1, then V0, and treats bytes that
  are neither as "owns nothing, no generation" (the member then simply gets no stickiness).
- ``cooperative-sticky`` sends only its generation (``int32``), which matters for members that
  speak subscription v0/v1 and cannot put the generation in the subscription itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from streamclient.consumer.assignors.abstract import NO_GENERATION, TopicPartitionTuple
from streamclient.errors import ProtocolDecodeError
from streamclient.protocol.primitives import (
    Reader,
    write_array_length,
    write_int32,
    write_string,
)


@dataclass(frozen=True)
class MemberData:
    """What a member says it owned, and in which generation (``-1``: unknown)."""

    partitions: tuple[TopicPartitionTuple, ...] = ()
    generation: int = NO_GENERATION


def encode_sticky_user_data(
    partitions: Iterable[TopicPartitionTuple], generation: int | None
) -> bytes:
    """V1 (or V0 when ``generation`` is ``None``), topics and partitions ascending."""
    grouped: dict[str, list[int]] = {}
    for topic, partition in sorted(set(partitions)):
        grouped.setdefault(topic, []).append(partition)
    buf = bytearray()
    write_array_length(buf, len(grouped))
    for topic, ids in grouped.items():
        write_string(buf, topic)
        write_array_length(buf, len(ids))
        for partition in ids:
            write_int32(buf, partition)
    if generation is not None:
        write_int32(buf, generation)
    return bytes(buf)


def _read_assignment(reader: Reader) -> list[TopicPartitionTuple]:
    partitions: list[TopicPartitionTuple] = []
    topics = reader.array_length()
    for _ in range(topics or 0):
        topic = reader.string()
        count = reader.array_length()
        partitions.extend((topic, reader.int32()) for _ in range(count or 0))
    return partitions


def decode_sticky_user_data(data: bytes | bytearray | memoryview | None) -> MemberData:
    """Java's ``deserializeTopicPartitionAssignment``: V1, else V0, else nothing owned."""
    if data is None or len(data) == 0:
        return MemberData()
    try:
        reader = Reader(data)
        partitions = _read_assignment(reader)
        return MemberData(tuple(partitions), reader.int32())
    except ProtocolDecodeError:
        pass
    try:
        return MemberData(tuple(_read_assignment(Reader(data))), NO_GENERATION)
    except ProtocolDecodeError:
        return MemberData()


def encode_cooperative_user_data(generation: int) -> bytes:
    buf = bytearray()
    write_int32(buf, generation)
    return bytes(buf)


def decode_cooperative_user_data(data: bytes | bytearray | memoryview | None) -> int:
    """The generation in cooperative-sticky user data; ``-1`` if absent or unreadable."""
    if data is None:
        return NO_GENERATION
    try:
        return Reader(data).int32()
    except ProtocolDecodeError:
        return NO_GENERATION
