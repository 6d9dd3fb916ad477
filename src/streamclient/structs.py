"""Plain data types shared by the producer, the consumer and the admin client.

Names, field order and kinds are aiokafka's (``aiokafka.structs``): the tuples stay
tuples so that code which unpacks them keeps working, and ``ConsumerRecord`` stays a
dataclass that cannot be unpacked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

from streamclient.errors import KafkaError

__all__ = [
    "BrokerMetadata",
    "ConsumerRecord",
    "OffsetAndMetadata",
    "OffsetAndTimestamp",
    "PartitionMetadata",
    "RecordMetadata",
    "TopicPartition",
]


class TopicPartition(NamedTuple):
    """A topic and one of its partitions."""

    topic: str
    partition: int


class BrokerMetadata(NamedTuple):
    """One broker as the cluster metadata describes it."""

    # aiokafka's spelling (and its ``int | str``: bootstrap entries have string ids)
    nodeId: int | str
    host: str
    port: int
    rack: str | None


class PartitionMetadata(NamedTuple):
    """The state of one partition in a MetadataResponse."""

    topic: str
    partition: int
    leader: int
    replicas: list[int]
    isr: list[int]
    error: KafkaError | None


class OffsetAndMetadata(NamedTuple):
    """An offset to commit, with an application string stored next to it."""

    offset: int
    metadata: str


class RecordMetadata(NamedTuple):
    """Where a produced record landed.

    ``timestamp_type`` is 0 (CreateTime, the timestamp the producer set) or 1
    (LogAppendTime, the broker's clock); ``log_start_offset`` is ``None`` when the
    broker's Produce version does not report it.
    """

    topic: str
    partition: int
    topic_partition: TopicPartition
    offset: int
    timestamp: int | None
    timestamp_type: int
    log_start_offset: int | None


KT = TypeVar("KT")
VT = TypeVar("VT")


@dataclass(slots=True)
class ConsumerRecord(Generic[KT, VT]):
    """One record returned by the consumer.

    ``serialized_key_size`` / ``serialized_value_size`` are -1 for a null key / value;
    ``checksum`` is ``None`` for record batches of magic 2, which have one CRC per batch;
    ``headers`` is a sequence of ``(str, bytes | None)`` pairs: Kafka allows a null header
    value.
    """

    topic: str
    partition: int
    offset: int
    timestamp: int
    timestamp_type: int
    key: KT | None
    value: VT | None
    checksum: int | None
    serialized_key_size: int
    serialized_value_size: int
    headers: Sequence[tuple[str, bytes | None]]


class OffsetAndTimestamp(NamedTuple):
    """The answer of ``offsets_for_times()`` for one partition."""

    offset: int
    timestamp: int | None  # None only from brokers too old to report it
