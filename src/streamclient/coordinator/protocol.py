"""aiokafka's ``aiokafka.coordinator.protocol``: the consumer protocol's names."""

from __future__ import annotations

from typing import ClassVar

from streamclient.consumer.assignors import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)

__all__ = ["ConsumerProtocol", "ConsumerProtocolMemberAssignment",
           "ConsumerProtocolMemberMetadata"]


class ConsumerProtocol:
    """The classic group protocol type consumers join with, and its message shapes."""

    PROTOCOL_TYPE: ClassVar[str] = "consumer"
    ASSIGNMENT_STRATEGIES: ClassVar[tuple[str, ...]] = ("range", "roundrobin")
    METADATA: ClassVar[type] = ConsumerProtocolMemberMetadata
    ASSIGNMENT: ClassVar[type] = ConsumerProtocolMemberAssignment
