"""The ``consumer`` protocol type's metadata and assignment bytes (classic JoinGroup/SyncGroup).

A member's JoinGroup protocol metadata is a ``ConsumerProtocolSubscription`` and the
leader's SyncGroup assignment for it a ``ConsumerProtocolAssignment``, each written as an
``int16`` version followed by the message in that version's classic (non-flexible)
encoding.  The field encoding is the generated message classes'; this module adds the
version prefix and the Java client's reading rules (``ConsumerProtocol``):

- a version above the highest known is read as the highest, ignoring what follows
  (newer fields are appended, so an old reader still finds the ones it knows);
- a version below the lowest is rejected;
- an assignment shorter than the two-byte prefix is rejected.

We write version 3 of both, as the Java client does.
"""

from __future__ import annotations

import struct

from streamclient.consumer.assignors.abstract import Assignment, Subscription
from streamclient.errors import IllegalArgumentError, ProtocolDecodeError
from streamclient.protocol.message import Buffer, Message
from streamclient.protocol.messages.consumer_protocol_assignment import (
    ConsumerProtocolAssignment,
)
from streamclient.protocol.messages.consumer_protocol_subscription import (
    ConsumerProtocolSubscription,
)

#: The protocol type consumers give in JoinGroup.
PROTOCOL_TYPE = "consumer"

SUBSCRIPTION_VERSION = ConsumerProtocolSubscription.VALID_VERSIONS[1]
ASSIGNMENT_VERSION = ConsumerProtocolAssignment.VALID_VERSIONS[1]

_VERSION = struct.Struct(">h")


def _prefixed(message: Message, version: int) -> bytes:
    lowest, highest = type(message).VALID_VERSIONS
    if not lowest <= version <= highest:
        raise IllegalArgumentError(
            f"{type(message).API_NAME} has versions {lowest}-{highest}, not {version}"
        )
    return _VERSION.pack(version) + message.encode(version)


def _read_version(data: Buffer, message: type[Message]) -> tuple[memoryview, int]:
    view = data if isinstance(data, memoryview) else memoryview(data)
    if len(view) < _VERSION.size:
        raise ProtocolDecodeError(
            f"{len(view)} bytes cannot hold the version prefix", api=message.API_NAME, offset=0
        )
    version = _VERSION.unpack_from(view, 0)[0]
    lowest, highest = message.VALID_VERSIONS
    if version < lowest:
        raise ProtocolDecodeError(
            f"unsupported version {version} (lowest is {lowest})", api=message.API_NAME, offset=0
        )
    return view, min(version, highest)


def encode_subscription(subscription: Subscription, version: int = SUBSCRIPTION_VERSION) -> bytes:
    """Version-prefixed subscription bytes, topics and owned partitions sorted (as Java).

    Fields the version does not carry are dropped: owned partitions below v1, the
    generation below v2, the rack below v3.
    """
    grouped: dict[str, list[int]] = {}
    for topic, partition in subscription.owned_partitions:
        grouped.setdefault(topic, []).append(partition)
    message = ConsumerProtocolSubscription(
        topics=list(subscription.topics),
        user_data=subscription.user_data,
        owned_partitions=[
            ConsumerProtocolSubscription.TopicPartition(topic=t, partitions=ps)
            for t, ps in grouped.items()
        ]
        if version >= 1
        else [],
        generation_id=subscription.generation_id if version >= 2 else -1,
        rack_id=subscription.rack_id if version >= 3 else None,
    )
    return _prefixed(message, version)


def decode_subscription(data: Buffer, group_instance_id: str | None = None) -> Subscription:
    """A member's subscription from its JoinGroup metadata.

    ``group_instance_id`` is not on the wire: the leader takes it from the JoinGroup
    response.  Fields the version lacks get their defaults (no owned partitions,
    generation ``-1``, no rack).
    """
    view, version = _read_version(data, ConsumerProtocolSubscription)
    message, _ = ConsumerProtocolSubscription.read(view, _VERSION.size, version)
    return Subscription(
        topics=message.topics,
        user_data=None if message.user_data is None else bytes(message.user_data),
        owned_partitions=[
            (tp.topic, p) for tp in message.owned_partitions for p in tp.partitions
        ],
        generation_id=message.generation_id,
        group_instance_id=group_instance_id,
        rack_id=message.rack_id,
    )


def encode_assignment(assignment: Assignment, version: int = ASSIGNMENT_VERSION) -> bytes:
    """Version-prefixed assignment bytes, topics and partitions ascending."""
    message = ConsumerProtocolAssignment(
        assigned_partitions=[
            ConsumerProtocolAssignment.TopicPartition(topic=t, partitions=ps)
            for t, ps in assignment.by_topic().items()
        ],
        user_data=assignment.user_data,
    )
    return _prefixed(message, version)


def decode_assignment(data: Buffer) -> Assignment:
    """This member's assignment from the SyncGroup response."""
    view, version = _read_version(data, ConsumerProtocolAssignment)
    message, _ = ConsumerProtocolAssignment.read(view, _VERSION.size, version)
    return Assignment(
        partitions=[(tp.topic, p) for tp in message.assigned_partitions for p in tp.partitions],
        user_data=None if message.user_data is None else bytes(message.user_data),
    )
